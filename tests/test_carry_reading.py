"""Carried columns read again at write (``carry_reading: reread``): the tables hold each row's
own metadata, checked against the input by pandas, and equal those of a run that held them."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import blob_tracks, read_table, run_job
from sonicatlas.io.ingest import ingest_csv

pytestmark = pytest.mark.slow  # cluster-tracks runs

CARRIED = ["track_name", "artist_name", "genre", "popularity"]


def messy_catalog(directory: Path) -> tuple[Path, pd.DataFrame]:
    """Rejects, a repeat in three genres, a conflicting repeat, odd column names, and a file
    of several row groups that the job reads as several partitions."""
    frame = blob_tracks(3_000, seed=8)
    frame["genre"] = pd.array([f"g{i % 5}" for i in range(len(frame))], dtype="string")
    frame.loc[10, "tempo"] = np.nan
    frame.loc[20, "energy"] = np.inf
    frame.loc[30, "track_id"] = None
    frame.loc[700] = frame.loc[5]                      # the same track listed again ...
    frame.loc[700, "genre"] = "rock"
    frame.loc[2_900] = frame.loc[5]                    # ... and again, in another file
    frame.loc[2_900, "genre"] = "jazz"
    frame.loc[1_500, "track_id"] = frame.loc[6, "track_id"]  # same id, other features
    renamed = frame.rename(columns={"artist_name": "Artist", "tempo": "BPM"})
    directory.mkdir(parents=True)
    renamed.iloc[:1_000].to_parquet(directory / "part.0.parquet", index=False)
    # 2,000 rows in row groups of 100: read as two partitions of 1,000 rows
    pq.write_table(pa.Table.from_pandas(renamed.iloc[1_000:], preserve_index=False),
                   directory / "part.1.parquet", row_group_size=100)
    return directory, frame


def run_both(tmp_path: Path, catalog: Path, *overrides: str) -> dict[str, Path]:
    runs = {}
    for mode in ("hold", "reread"):
        runs[mode] = tmp_path / f"run-{mode}"
        run_job(runs[mode], f"input={catalog}", "k=3", f"carry_reading={mode}", *overrides)
    return runs


def sorted_table(path: Path, key: list[str]) -> pd.DataFrame:
    return read_table(path).sort_values(key, kind="stable").reset_index(drop=True)


def test_reread_metadata_is_each_rows_own_and_the_tables_equal_a_held_run(tmp_path,
                                                                          monkeypatch):
    from sonicatlas.io import catalog as catalog_module

    # partitions of 1,000 rows, so that the second file is two partitions of row groups
    original = catalog_module._read_columns
    monkeypatch.setattr(catalog_module, "_read_columns",
                        lambda c, w, j, rows, *a: original(c, w, j, 1_000, *a))
    catalog, frame = messy_catalog(tmp_path / "catalog")
    runs = run_both(tmp_path, catalog, "columns={Artist: artist_name, BPM: tempo}")

    reread = sorted_table(runs["reread"] / "assignments", ["track_id"])
    # the reference: the input by pandas, first listing of each id, genres of its repeats
    first = frame.dropna(subset=["track_id"]).drop_duplicates("track_id").set_index("track_id")
    expected = first.loc[reread["track_id"], CARRIED].reset_index()
    repeated = frame.loc[5, "track_id"]
    expected.loc[expected["track_id"] == repeated, "genre"] = \
        f"{frame.loc[5, 'genre']}|rock|jazz"
    for column in CARRIED:
        assert reread[column].astype(str).tolist() == expected[column].astype(str).tolist(), \
            column
    assert len(reread) == 3_000 - 2 - 4  # 2 repeats merged; 4 rejects
    # the rejects hold their own metadata, as read, though only the features were read first
    rejects = read_table(runs["reread"] / "summary/rejects")
    assert sorted(rejects["reason"]) == ["duplicate track_id", "infinite energy",
                                         "missing tempo", "missing track_id"]
    for _, row in rejects.iterrows():
        source = frame.iloc[row["partition"] * 1_000 + row["row"]]
        assert (row["track_name"], row["artist_name"]) == (source["track_name"],
                                                           source["artist_name"])

    for mode, run in runs.items():  # what was done, said in the manifest
        assert json.loads((run / "manifest.json").read_text())["carry_reading"] == mode
    held = sorted_table(runs["hold"] / "assignments", ["track_id"])
    pd.testing.assert_frame_equal(reread, held)
    pd.testing.assert_frame_equal(
        sorted_table(runs["reread"] / "summary/rejects", ["partition", "row"]),
        sorted_table(runs["hold"] / "summary/rejects", ["partition", "row"]))
    tables = sorted(p.name for p in (runs["hold"] / "summary").iterdir())
    assert tables == sorted(p.name for p in (runs["reread"] / "summary").iterdir())
    for table in tables:
        if table != "rejects":
            pd.testing.assert_frame_equal(read_table(runs["reread"] / "summary" / table),
                                          read_table(runs["hold"] / "summary" / table),
                                          obj=table)
    pd.testing.assert_frame_equal(read_table(runs["reread"] / "query"),
                                  read_table(runs["hold"] / "query"))


def test_reread_of_an_ingested_catalog_keeps_the_set_aside_rows_metadata(tmp_path):
    frame = blob_tracks(600, seed=9).astype({"tempo": object})
    frame.loc[5, "tempo"] = "fast"       # ingest sets this one aside
    frame.loc[20, "duration_ms"] = 1e30  # the run rejects this one
    frame.to_csv(tmp_path / "tracks.csv", index=False)
    ingest_csv([str(tmp_path / "tracks.csv")], str(tmp_path / "catalog"))
    runs = run_both(tmp_path, tmp_path / "catalog")
    rejects = read_table(runs["reread"] / "summary/rejects").set_index("source_line")
    assert rejects.loc[7, "track_name"] == frame.loc[5, "track_name"]
    assert rejects.loc[22, "track_name"] == frame.loc[20, "track_name"]
    assignments = sorted_table(runs["reread"] / "assignments", ["track_id"])
    names = frame.set_index("track_id").loc[assignments["track_id"], "track_name"]
    assert assignments["track_name"].tolist() == names.tolist()
    pd.testing.assert_frame_equal(
        assignments, sorted_table(runs["hold"] / "assignments", ["track_id"]))
    pd.testing.assert_frame_equal(
        sorted_table(runs["reread"] / "summary/rejects", ["source_line"]),
        sorted_table(runs["hold"] / "summary/rejects", ["source_line"]))


def test_auto_rereads_only_what_would_fill_a_third_of_the_workers_memory():
    from distributed import Client, LocalCluster

    from sonicatlas.runs.outputs import HELD_BYTES_PER_ROW, carry_reading

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                      memory_limit="600MB", dashboard_address="127.0.0.1:0") as cluster, \
            Client(cluster) as client:
        third = 2 * 600e6 / 3
        fits, too_many = int(third / HELD_BYTES_PER_ROW) - 1, int(third / HELD_BYTES_PER_ROW) + 1
        assert carry_reading("auto", fits, client) == "hold"
        assert carry_reading("auto", too_many, client) == "reread"
        assert carry_reading("hold", too_many, client) == "hold"
        assert carry_reading("reread", 10, client) == "reread"
