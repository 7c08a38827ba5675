"""Reading a catalog: partitions, row groups, Hive folders, and file errors that name the file."""

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from distributed import Client, LocalCluster

from conftest import blob_tracks, write_catalog
from sonicatlas.contract import FEATURES
from sonicatlas.errors import CorruptFileError
from sonicatlas.io.catalog import _row_group_runs, open_catalog, read_catalog


@pytest.fixture(scope="module")
def client():
    with LocalCluster(n_workers=1, processes=False, dashboard_address="127.0.0.1:0") as cluster, \
            Client(cluster) as client:
        yield client


def test_row_group_runs_split_big_files_only():
    assert _row_group_runs((5_000,), 1_000) == [None]  # one group: the whole file
    assert _row_group_runs((400, 400, 400), 1_000) == [None]  # within 1.5x: the whole file
    assert _row_group_runs((400, 400, 400, 400, 400), 1_000) == [[0, 1], [2, 3], [4]]
    assert _row_group_runs((3_000, 10, 10), 1_000) == [[0], [1, 2]]


def test_partitions_follow_files_and_row_groups_and_keep_every_row(tmp_path, client):
    frame = blob_tracks(5_000)
    (tmp_path / "c").mkdir()
    pq.write_table(pa.Table.from_pandas(frame.iloc[:4_000], preserve_index=False),
                   tmp_path / "c" / "a.parquet", row_group_size=1_000)
    frame.iloc[4_000:].to_parquet(tmp_path / "c" / "b.parquet", index=False)
    catalog = open_catalog(str(tmp_path / "c"), {}, FEATURES, client)
    assert catalog.row_groups == ((1_000,) * 4, (1_000,))
    read = read_catalog(catalog, ("track_name", "genre"), rows_per_partition=2_000)
    assert read.npartitions == 3  # a.parquet in two runs of row groups, then b.parquet
    got = read.compute()
    expected = frame[["track_id", *FEATURES, "track_name", "genre"]]
    pd.testing.assert_frame_equal(got.reset_index(drop=True), expected, check_dtype=False)
    assert got["track_id"].dtype == pd.StringDtype("pyarrow")
    assert list(read.map_partitions(len).compute()) == [2_000, 2_000, 1_000]


def test_hive_folders_are_columns(tmp_path, client):
    frame = blob_tracks(600)[["track_id", *FEATURES, "genre"]]
    frame.to_parquet(tmp_path / "c", partition_cols=["genre"], index=False)
    catalog = open_catalog(str(tmp_path / "c"), {}, FEATURES, client)
    got = read_catalog(catalog, ("genre",)).compute()
    assert sorted(zip(got["track_id"], got["genre"], strict=True)) == \
        sorted(zip(frame["track_id"], frame["genre"].astype(str), strict=True))


def test_a_file_whose_data_cannot_be_read_is_named(tmp_path, client):
    catalog_dir = write_catalog(blob_tracks(3_000), tmp_path / "c", parts=3)
    path = catalog_dir / "part.1.parquet"
    data = bytearray(path.read_bytes())
    footer = pq.ParquetFile(path).metadata.serialized_size + 8
    data[4:len(data) - footer] = b"\xff" * (len(data) - footer - 4)  # the pages, not the footer
    path.write_bytes(bytes(data))
    catalog = open_catalog(str(catalog_dir), {}, FEATURES, client)  # the footer still reads
    with pytest.raises(CorruptFileError, match=r"part\.1\.parquet"):
        read_catalog(catalog, ()).compute()


def test_an_ingested_catalog_is_read_with_the_rows_ingest_set_aside(tmp_path, client):
    from sonicatlas.io.checks import validate
    from sonicatlas.io.ingest import ingest_csv

    frame = blob_tracks(200, seed=13).astype({"tempo": object})
    frame.loc[[3, 50, 120], "tempo"] = ["fast", "slow", "?"]
    frame.to_csv(tmp_path / "t.csv", index=False)
    ingest_csv([str(tmp_path / "t.csv")], str(tmp_path / "cat"), blocksize=None)
    catalog = open_catalog(str(tmp_path / "cat"), {}, FEATURES, client)
    assert catalog.rows == len(pd.read_csv(tmp_path / "t.csv"))  # every row of the CSV
    accepted, rejects = (f.compute() for f in validate(read_catalog(catalog, ()), FEATURES)[:2])
    assert len(accepted) + len(rejects) == catalog.rows
    assert rejects[["track_id", "reason", "detail", "source_line"]].values.tolist() == [
        [frame.loc[i, "track_id"], "unparsable tempo", repr(frame.loc[i, "tempo"]), i + 2]
        for i in (3, 50, 120)]


def test_common_types_across_files():
    from sonicatlas.io.schema import common_type

    assert common_type([pa.int32(), pa.int64()]) == pa.int64()
    assert common_type([pa.int64(), pa.float64(), pa.float32()]) == pa.float64()
    assert common_type([pa.float64(), pa.string()]) == pa.string()
    assert common_type([pa.null(), pa.float64()]) == pa.float64()
    assert common_type([pa.bool_(), pa.int8()]) == pa.int64()
    assert common_type([pa.date32(), pa.string()]) == pa.string()
    assert common_type([pa.date32(), pa.float64()]) is None


def test_duplicates_in_an_ingested_catalog_keep_their_lines(tmp_path, client):
    from sonicatlas.io.checks import validate
    from sonicatlas.io.ingest import ingest_csv

    frame = blob_tracks(100, seed=14)
    frame.loc[70, "track_id"] = frame.loc[10, "track_id"]
    frame.to_csv(tmp_path / "t.csv", index=False)
    ingest_csv([str(tmp_path / "t.csv")], str(tmp_path / "cat"), blocksize="2KB")
    catalog = open_catalog(str(tmp_path / "cat"), {}, FEATURES, client)
    accepted, rejects = (f.compute() for f in validate(read_catalog(catalog, ()), FEATURES)[:2])
    assert rejects[["track_id", "reason", "source_file", "source_line"]].values.tolist() == [
        [frame.loc[10, "track_id"], "duplicate track_id", str(tmp_path / "t.csv"), 72]]
    assert len(accepted) == 99


def test_types_without_a_common_one_name_the_files():
    from sonicatlas.errors import WrongTypeError
    from sonicatlas.io.schema import unify

    schemas = {"a.parquet": pa.schema([("tempo", pa.float64()), ("day", pa.date32())]),
               "b.parquet": pa.schema([("tempo", pa.int64()), ("day", pa.float64())])}
    with pytest.raises(WrongTypeError, match=r"'day'.*date32\[day\] in a\.parquet; "
                                             r"double in b\.parquet"):
        unify(schemas, "cat")
    del schemas["a.parquet"]
    assert unify(schemas, "cat") == schemas["b.parquet"]
