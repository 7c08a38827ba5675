"""--overwrite replaces only what sonicatlas wrote, and replaces a run only by a complete one."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest

from conftest import TEST_CLUSTER, blob_tracks, run_job, write_catalog

pytestmark = pytest.mark.slow  # the command line in its own process, and one real run


def _sonicatlas(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "sonicatlas.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout)


def _run_args(out, *overrides):
    args = ["run", "cluster-tracks", "--out", out, "--overwrite"]
    for text in (*TEST_CLUSTER, *overrides):
        args += ["--set", text]
    return args


def _snapshot(directory):
    return {p.relative_to(directory): p.read_bytes() for p in sorted(directory.rglob("*"))
            if p.is_file()}


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    return write_catalog(blob_tracks(1_500, seed=5), tmp_path_factory.mktemp("c") / "catalog")


@pytest.fixture(scope="module")
def made_run(tmp_path_factory, catalog):
    out = tmp_path_factory.mktemp("runs") / "run"
    run_job(out, f"input={catalog}", "k=3")
    return out


def _refused(finished, directory):
    assert finished.returncode == 2, finished.stdout + finished.stderr
    lines = finished.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "untouched" in lines[0]
    # no partial sibling was made, no cluster was started
    assert not [p for p in directory.parent.iterdir() if p.name.startswith(f".{directory.name}")]
    assert "Dask" not in finished.stdout


@pytest.mark.parametrize("contents", [
    {"notes.txt": b"my thesis"},
    {"manifest.json": b'{"name": "my project"}', "data.csv": b"a,b\n1,2\n"},  # not a run's
    {"manifest.json": b"not json", "assignments/part.0.parquet": b"x"},
])
def test_run_overwrite_refuses_a_directory_sonicatlas_did_not_write(tmp_path, catalog,
                                                                    contents):
    home = tmp_path / "home"
    for name, data in contents.items():
        (home / name).parent.mkdir(parents=True, exist_ok=True)
        (home / name).write_bytes(data)
    before = _snapshot(home)
    _refused(_sonicatlas(*_run_args(home, f"input={catalog}")), home)
    assert _snapshot(home) == before


def test_run_overwrite_refuses_a_users_file(tmp_path, catalog):
    target = tmp_path / "report.pdf"
    target.write_bytes(b"%PDF mine")
    _refused(_sonicatlas(*_run_args(target, f"input={catalog}")), target)
    assert target.read_bytes() == b"%PDF mine"


def test_run_overwrite_replaces_a_run_and_a_failed_run_leaves_the_old_one(tmp_path, made_run,
                                                                          catalog):
    # a failure after the run has started (the input is gone) keeps the old run whole
    old = _snapshot(made_run)
    failed = _sonicatlas(*_run_args(made_run, f"input={tmp_path / 'no-such-catalog'}"))
    assert failed.returncode == 2, failed.stdout + failed.stderr
    assert _snapshot(made_run) == old
    assert [p.name for p in made_run.parent.iterdir()] == ["run"]

    finished = _sonicatlas(*_run_args(made_run, f"input={catalog}", "k=2"))
    assert finished.returncode == 0, finished.stdout + finished.stderr
    manifest = json.loads((made_run / "manifest.json").read_text())
    assert manifest["k"] == 2 and pd.read_parquet(made_run / "assignments")["cluster"].max() == 1
    assert not (made_run / ".owner.json").exists()
    assert [p.name for p in made_run.parent.iterdir()] == ["run"]  # nothing aside is left


@pytest.mark.parametrize(("name", "data"), [
    ("tracks.csv", b"id,title\n1,mine\n"),
    ("tracks.json", b'{"id": 1, "title": "mine"}\n'),
    ("notes.md", b"# my notes\n"),
])
def test_export_overwrite_refuses_a_file_that_is_not_an_export(tmp_path, made_run, name, data):
    target = tmp_path / name
    target.write_bytes(data)
    extra = ["--summary"] if name.endswith(".md") else ["--cluster", "0"]
    finished = _sonicatlas("export", made_run, *extra, "--out", target, "--overwrite")
    _refused(finished, target)
    assert target.read_bytes() == data


def test_export_overwrite_refuses_a_users_directory(tmp_path, made_run):
    target = tmp_path / "photos"
    target.mkdir()
    (target / "cat.parquet").write_bytes(b"not parquet")
    (target / "cat.jpg").write_bytes(b"jpeg")
    finished = _sonicatlas("export", made_run, "--out", target, "--overwrite")
    _refused(finished, target)
    assert sorted(p.name for p in target.iterdir()) == ["cat.jpg", "cat.parquet"]


@pytest.mark.parametrize("fmt", ["csv", "json", "parquet"])
def test_export_overwrite_replaces_an_export(tmp_path, made_run, fmt):
    target = tmp_path / f"tracks.{fmt}"
    for cluster in ("0", "1"):
        finished = _sonicatlas("export", made_run, "--cluster", cluster, "--format", fmt,
                               "--out", target, "--overwrite")
        assert finished.returncode == 0, finished.stdout + finished.stderr
    reference = pd.read_parquet(made_run / "assignments")
    wanted = int((reference["cluster"] == 1).sum())
    read = {"csv": pd.read_csv, "json": lambda p: pd.read_json(p, lines=True),
            "parquet": pd.read_parquet}[fmt]
    assert len(read(target)) == wanted and set(read(target)["cluster"]) == {1}
    summary = tmp_path / "run.md"
    for _ in range(2):
        finished = _sonicatlas("export", made_run, "--summary", "--out", summary,
                               "--overwrite")
        assert finished.returncode == 0, finished.stdout + finished.stderr


def test_a_failed_move_puts_the_old_output_back(tmp_path):
    from sonicatlas import storage

    old = tmp_path / "run"
    old.mkdir()
    (old / "manifest.json").write_text("old")
    fs, path = storage.resolve(old)
    with pytest.raises(FileNotFoundError):  # the new one is not there to move in
        storage.move_into_place(fs, str(tmp_path / ".run.partial-00000000"), path)
    assert (old / "manifest.json").read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["run"]


def test_a_run_moved_aside_and_left_is_named_by_the_next_sweep(tmp_path):
    from sonicatlas import storage
    from sonicatlas.runs.partials import sweep_partials

    (tmp_path / ".run.old-0123abcd").mkdir()
    fs, parent = storage.resolve(tmp_path)
    swept = sweep_partials(fs, parent)
    assert swept.removed == [] and len(swept.left) == 1
    assert swept.left[0].startswith(f"{tmp_path / '.run.old-0123abcd'}: an old run moved aside")
    assert (tmp_path / ".run.old-0123abcd").is_dir()
