"""The discovery commands: clean csv/json on stdout, atomic --out, one-line errors (exit 2),
and assign placing a catalog exactly as the job did."""

import io
import json
import shutil

import pandas as pd
import pytest
from click.testing import CliRunner
from distributed import Client, LocalCluster

from conftest import blob_tracks, run_job, write_catalog
from sonicatlas.cli import main

pytestmark = pytest.mark.slow  # a cluster-tracks run


@pytest.fixture(scope="module")
def scheduler():
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address="127.0.0.1:0") as cluster, Client(cluster) as c:
        yield c.scheduler.address


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    frame = blob_tracks(2_000, seed=9)
    catalog = write_catalog(frame, root / "catalog", parts=2)
    run_job(root / "run", f"input={catalog}", "k=3")
    return root, frame


def invoke(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    return result


def test_csv_and_json_hold_only_the_data(made):
    root, frame = made
    track = frame["track_id"].iloc[10]
    result = invoke("similar", root / "run", "--track", track, "-n", 7, "--format", "csv")
    assert result.exit_code == 0, result.output
    table = pd.read_csv(io.StringIO(result.stdout))
    assert len(table) == 7 and table["rank"].tolist() == list(range(1, 8))
    assert {"track_id", "similarity", "cluster", "cluster_name", "track_name",
            "artist_name"} <= set(table.columns)
    assert "Query:" in result.stderr
    result = invoke("search", root / "run", "song 12", "--format", "json", "-n", 3)
    body = json.loads(result.stdout)
    assert [t["track_name"] for t in body["tracks"]][0] == "song 12"


def test_out_is_written_whole_and_only_on_success(made, tmp_path):
    root, frame = made
    out = tmp_path / "near.json"
    result = invoke("similar", root / "run", "--track", frame["track_id"].iloc[0],
                    "--format", "json", "--out", out)
    assert result.exit_code == 0 and result.stdout == ""
    assert len(json.loads(out.read_text())["tracks"]) == 10
    assert [p.name for p in tmp_path.iterdir()] == ["near.json"]
    result = invoke("playlist", root / "run", "--cluster", "nope", "--out", tmp_path / "p.csv")
    assert result.exit_code == 2 and not (tmp_path / "p.csv").exists()


def test_name_query_says_which_track_it_took(made):
    root, _ = made
    result = invoke("similar", root / "run", "--name", "SONG 77", "-n", 3)
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Query: song 77 by ")


@pytest.mark.parametrize("args,message", [
    (["similar", "{run}", "--track", "nope"], "unknown track id 'nope'"),
    (["similar", "{run}", "--track", "song 5"], "use --name. Closest names: song 5 by"),
    (["similar", "{run}", "--name", "   "], "empty"),
    (["similar", "{run}", "--track", "x", "-n", "0"], "-n must be between 1 and 500"),
    (["search", "{run}", "  "], "the search text is empty"),
    (["playlist", "{run}", "--cluster", "0", "--size", "0"], "--size must be between 1 and 500"),
    (["playlist", "{run}", "--cluster", "0", "--size", "501"], "--size"),
    (["playlist", "{run}", "--cluster", "0", "--min-similarity", "2"], "--min-similarity"),
    (["playlist", "{run}", "--cluster", "nope"], "unknown cluster 'nope'; choose"),
    (["artist", "{run}", "zzzz"], "no artist matches 'zzzz'"),
    (["similar", "{root}", "--track", "x"], "is not a run directory"),
    (["search", "{old}", "song"], "no query data (query/): re-run `sonicatlas run"),
])
def test_bad_input_is_one_line_and_exit_code_2(made, args, message):
    root, _ = made
    old = root / "old"
    if not old.exists():
        shutil.copytree(root / "run", old)
        shutil.rmtree(old / "query")
    args = [a.format(run=root / "run", root=root, old=old) for a in args]
    result = invoke(*args)
    assert result.exit_code == 2
    assert message in result.stderr and result.stderr.count("\n") == 1 and result.stdout == ""


def test_every_option_is_explained_in_help():
    for command in ("similar", "playlist", "search", "artist", "assign"):
        text = invoke(command, "--help").output
        assert "Examples:" in text
        options = [line.split()[0] for line in text.split("Options:")[1].splitlines()
                   if line.strip().startswith("-")]
        assert len(options) >= 3
        for line in text.split("Options:")[1].splitlines():
            if line.strip().startswith("--") and line.strip() != "--help":
                assert len(line.split("  ")) > 1 or "Show this" in line, line


def test_assign_places_the_runs_own_catalog_as_the_job_did(made, scheduler, tmp_path):
    root, frame = made
    bad = frame.head(50).copy()
    bad.loc[bad.index[:3], "tempo"] = -1.0  # rejected as the job would
    catalog = write_catalog(pd.concat([frame, bad.assign(
        track_id=[f"new{i}" for i in range(50)])]), tmp_path / "new", parts=3)
    out = tmp_path / "assigned"
    result = invoke("assign", root / "run", "--input", catalog, "--out", out,
                    "--scheduler", scheduler, "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["rows"]["rows_rejected"] == 3
    got = pd.read_parquet(out / "assignments").set_index("track_id")
    job = pd.read_parquet(root / "run/assignments").set_index("track_id")
    assert (got.loc[job.index, "cluster"] == job["cluster"]).all()
    pd.testing.assert_series_equal(got.loc[job.index, "distance"], job["distance"],
                                   rtol=1e-6)
    rejects = pd.read_parquet(out / "rejects")
    assert rejects["reason"].tolist() == ["tempo outside (0, 260]"] * 3
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["job"] == "assign" and manifest["run"] == str(root / "run")


def test_assign_refuses_a_damaged_or_foreign_model_before_writing(made, scheduler, tmp_path):
    root, _ = made
    for damage in ("truncate", "features", "centers"):
        run = tmp_path / damage
        shutil.copytree(root / "run", run)
        model_file = run / "model/model.json"
        model = json.loads(model_file.read_text())
        if damage == "truncate":
            model_file.write_text(model_file.read_text()[:200])
        elif damage == "features":
            model["features"] = model["features"][:-1] + ["bpm"]
            model_file.write_text(json.dumps(model))
        else:
            model["centers"][0] = model["centers"][0][:3]
            model_file.write_text(json.dumps(model))
        out = tmp_path / f"out-{damage}"
        result = invoke("assign", run, "--input", root / "catalog", "--out", out,
                        "--scheduler", scheduler)
        assert result.exit_code == 2, result.output
        assert "model at" in result.stderr and result.stderr.count("\n") == 1
        assert not out.exists()


def test_a_run_on_an_fsspec_url_answers_the_same(made):
    import dask
    import fsspec

    root, frame = made
    memory = fsspec.filesystem("memory")
    for table in ("model", "query", "assignments"):
        for path in sorted((root / "run" / table).iterdir()):
            memory.put(str(path), f"/discover-run/{table}/{path.name}")
    memory.put(str(root / "run/manifest.json"), "/discover-run/manifest.json")
    from sonicatlas.discover.similar import similar_tracks
    track = frame["track_id"].iloc[3]
    with dask.config.set(scheduler="sync"):  # the memory file system is this process's
        _, remote = similar_tracks("memory://discover-run", track, n=8)
        _, local = similar_tracks(str(root / "run"), track, n=8)
    pd.testing.assert_frame_equal(remote, local)
