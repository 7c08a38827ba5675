"""Input that is odd but common: huge values, files that disagree, globs, empty folders."""

from __future__ import annotations

import glob
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from distributed import Client, LocalCluster

from conftest import blob_tracks
from sonicatlas.contract import FEATURES, REASON, Range
from sonicatlas.errors import MissingColumnsError
from sonicatlas.io.catalog import list_parquet_files, open_catalog, read_catalog
from sonicatlas.io.checks import check_partition, validate

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def client():
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                      dashboard_address=None) as cluster, Client(cluster) as c:
        yield c


def _four_files(frame: pd.DataFrame, directory: Path, change=None) -> list[pd.DataFrame]:
    directory.mkdir()
    chunks = [frame.iloc[i::4].reset_index(drop=True) for i in range(4)]
    for i, chunk in enumerate(chunks):
        (change(i, chunk) if change else chunk).to_parquet(directory / f"part.{i}.parquet",
                                                           index=False)
    return chunks


def _read(path: Path, client) -> tuple[pd.DataFrame, pd.DataFrame]:
    catalog = open_catalog(str(path), {}, FEATURES, client)
    accepted, rejects, _ = validate(read_catalog(catalog, ()), FEATURES)
    return accepted.compute(), rejects.compute()


def test_huge_durations_are_rejected_with_the_value(tmp_path):
    frame = blob_tracks(20, seed=3)
    frame.loc[0, "duration_ms"] = 1e308  # overflows float32
    frame.loc[1, "duration_ms"] = 1e30   # fits float32, but no track lasts that long
    frame.loc[2, "duration_ms"] = 90_000_000.0  # 25 hours
    checked = check_partition(frame, FEATURES)
    assert checked.loc[0, REASON] == "duration_ms too large for float32"
    assert checked.loc[0, "detail"] == "1e+308"
    assert checked.loc[1, REASON] == "duration_ms outside (0, 8.64e+07]"
    assert checked.loc[1, "detail"] == "1e+30"
    assert checked.loc[2, "detail"] == "90000000"
    assert checked[REASON].iloc[3:].isna().all()


def test_bounds_are_configurable(tmp_path):
    from sonicatlas.config import ClusterTracksConfig

    frame = blob_tracks(200, seed=4)
    config = ClusterTracksConfig(bounds={"duration_ms": (0, 300_000)})
    checked = check_partition(frame, FEATURES, ranges=config.valid_ranges())
    longer = frame["duration_ms"] > 300_000  # the reference: a plain comparison
    assert longer.any() and (checked[REASON].notna() == longer).all()
    assert config.valid_ranges()["duration_ms"] == Range(0, 300_000, low_inclusive=False)
    with pytest.raises(ValueError, match="not a feature"):
        ClusterTracksConfig(bounds={"bpm": (0, 1)})


def test_integer_and_float_files_are_read_as_floats(tmp_path, client):
    frame = blob_tracks(400, seed=5)
    frame["tempo"] = frame["tempo"].round()

    def as_int(i, chunk):
        return chunk.astype({"tempo": "int64"}) if i == 0 else chunk
    chunks = _four_files(frame, tmp_path / "c", as_int)
    accepted, rejects = _read(tmp_path / "c", client)
    assert len(rejects) == 0 and len(accepted) == len(frame)
    expected = pd.concat(chunks)["tempo"].to_numpy(dtype=np.float32)
    np.testing.assert_array_equal(accepted["tempo"].to_numpy(), expected)


def test_a_feature_stored_as_text_rejects_only_the_words(tmp_path, client):
    frame = blob_tracks(400, seed=6)

    def as_text(i, chunk):
        if i != 2:
            return chunk
        chunk = chunk.astype({"energy": object})
        chunk["energy"] = chunk["energy"].map(repr)
        chunk.loc[3, "energy"] = "high"
        return chunk
    chunks = _four_files(frame, tmp_path / "c", as_text)
    accepted, rejects = _read(tmp_path / "c", client)
    assert rejects[["track_id", REASON, "detail"]].values.tolist() == [
        [chunks[2].loc[3, "track_id"], "unparsable energy", "'high'"]]
    kept = pd.concat(chunks).set_index("track_id").drop(index=chunks[2].loc[3, "track_id"])
    np.testing.assert_allclose(accepted.set_index("track_id").loc[kept.index, "energy"],
                               kept["energy"], rtol=1e-6)


def test_a_feature_missing_from_some_files_names_them(tmp_path, client):
    _four_files(blob_tracks(400, seed=7), tmp_path / "c",
                lambda i, chunk: chunk.drop(columns="tempo") if i == 1 else chunk)
    with pytest.raises(MissingColumnsError, match=r"'tempo' is missing from 1 of 4 files "
                                                  r"\(part\.1\.parquet\)"):
        open_catalog(str(tmp_path / "c"), {}, FEATURES, client)


@pytest.mark.parametrize("pattern", ["part.?.parquet", "part.[01].parquet", "part.[!0]*"])
def test_globs_match_as_the_shell_does(tmp_path, client, pattern):
    _four_files(blob_tracks(40, seed=8), tmp_path / "c")
    expected = sorted(glob.glob(str(tmp_path / "c" / pattern)))
    found = list_parquet_files(str(tmp_path / "c" / pattern))
    assert [f.removeprefix("file://") for f in found] == expected and expected
    catalog = open_catalog(str(tmp_path / "c" / pattern), {}, FEATURES, client)
    assert catalog.rows == sum(len(pd.read_parquet(p)) for p in expected)


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = {"PYTHONPATH": f"{REPO / 'lib'}:{REPO}", "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, "-m", "sonicatlas.cli", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_an_empty_directory_is_one_line(tmp_path):
    (tmp_path / "empty").mkdir()
    done = _cli("run", "cluster-tracks", "--set", f"input={tmp_path / 'empty'}",
                "--set", "cluster.n_workers=1", "--set", "cluster.dashboard_address=:0",
                "--out", str(tmp_path / "run"))
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"error: catalog at {tmp_path / 'empty'}: no Parquet files found"]
    assert "Traceback" not in done.stdout + done.stderr


@pytest.mark.slow
def test_a_run_out_that_cannot_be_written_is_one_line(tmp_path):
    _four_files(blob_tracks(40, seed=9), tmp_path / "c")
    done = _cli("run", "cluster-tracks", "--set", f"input={tmp_path / 'c'}",
                "--set", "cluster.n_workers=1", "--set", "cluster.dashboard_address=:0",
                "--out", "/sys/sonicatlas-run")
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: cannot write /sys/sonicatlas-run: ")


def test_ingest_of_a_directory_reads_its_files_or_says_it_is_empty(tmp_path):
    from sonicatlas.errors import InputError
    from sonicatlas.io.ingest import ingest_csv

    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no input files in the directory"):
        ingest_csv([str(tmp_path / "empty")], str(tmp_path / "out"))
    (tmp_path / "csvs").mkdir()
    frame = blob_tracks(30, seed=10)
    frame.iloc[:10].to_csv(tmp_path / "csvs" / "a.csv", index=False)
    frame.iloc[10:].to_csv(tmp_path / "csvs" / "b.csv", index=False)
    result = ingest_csv([str(tmp_path / "csvs")], str(tmp_path / "out"))
    assert result.rows_accepted == len(frame)
    assert sorted(pd.read_parquet(tmp_path / "out")["track_id"]) == sorted(frame["track_id"])
