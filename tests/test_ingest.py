"""Tests for `sonicatlas ingest`: CSV files into the Parquet catalog contract."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import dask
import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest
from dask.bytes import read_bytes

from sonicatlas.contract import FEATURES, METADATA, REQUIRED
from sonicatlas.errors import (
    CorruptFileError,
    InputError,
    MissingColumnsError,
    OutputExistsError,
)
from sonicatlas.io.columns import load_column_mapping, parse_column_mapping
from sonicatlas.io.ingest import REJECTS_DIR, IngestResult, ingest_csv

REPO = Path(__file__).resolve().parents[1]
REAL = Path(__file__).resolve().parents[2] / "shared/data/real"
HEADER = ["id", *FEATURES, "artist", "popularity", "explicit", "release_date", "uri"]
MAPPING = {"id": "track_id", "artist": "artist_name"}


def _row(track_id="t", *, tempo="120.5", energy="0.8", popularity="50", explicit="true",
         date="2019-06-14") -> list[str]:
    features = dict.fromkeys(FEATURES, "0.5") | {"tempo": tempo, "energy": energy,
                                                   "loudness": "-5.5", "duration_ms": "200000"}
    return [track_id, *features.values(), "Artist", popularity, explicit, date, "uri:x"]


def _write_csv(path: Path, rows: list[list[str]], header: list[str] = HEADER) -> Path:
    pd.DataFrame(rows, columns=header).to_csv(path, index=False)
    return path


# Each planted row: (row, expected (reason, detail) or None when accepted).
PLANTED = [
    (_row("ok1"), None),
    (_row("ok2", date="2019-06"), None),
    (_row("ok3", date="1999", explicit="0"), None),
    (_row("ok4", date="06/10/2022", explicit="FALSE", popularity=""), None),
    (_row("empty_energy", energy=""), None),  # kept as NaN; the job rejects it later
    (_row("bad_tempo", tempo="abc"), ("unparsable tempo", "'abc'")),
    (_row(""), ("missing track_id", "''")),
    (_row("  ", tempo="x"), ("missing track_id", "'  '; unparsable tempo: 'x'")),
    (_row("frac_pop", popularity="5.5"), ("unparsable popularity", "'5.5'")),
    (_row("bad_explicit", explicit="maybe"), ("unparsable explicit", "'maybe'")),
    (_row("bad_date", date="someday"), ("unparsable release_date", "'someday'")),
]


@pytest.fixture
def planted(tmp_path: Path) -> Path:
    return _write_csv(tmp_path / "planted.csv", [r for r, _ in PLANTED])


# --- column mappings -------------------------------------------------------------------------

def test_parse_column_mapping() -> None:
    assert parse_column_mapping("track_artist=artist_name, id = track_id") == {
        "track_artist": "artist_name", "id": "track_id"}
    assert parse_column_mapping("  ") == {}


@pytest.mark.parametrize("text", ["tempo", "a=b=c", "=tempo", "bpm=", "a=b,,c=d",
                                  "a=tempo,b=tempo", "a=tempo,a=energy"])
def test_parse_column_mapping_rejects_malformed(text: str) -> None:
    with pytest.raises(ValueError, match="mapp"):
        parse_column_mapping(text)


@pytest.mark.parametrize("name", ["spotify_songs.yaml", "rolling_stones.yaml"])
def test_source_yaml_maps_onto_contract(name: str) -> None:
    mapping = load_column_mapping(str(REPO / "conf/sources" / name))
    assert mapping and set(mapping.values()) <= set(REQUIRED + METADATA)


def test_load_column_mapping_rejects_yaml_booleans(tmp_path: Path) -> None:
    (tmp_path / "m.yaml").write_text("columns:\n  yes: track_id\n")
    with pytest.raises(InputError, match="non-empty strings"):
        load_column_mapping(str(tmp_path / "m.yaml"))


# --- parsing and rejects ---------------------------------------------------------------------

def test_planted_rows_give_expected_accepts_and_rejects(planted: Path, tmp_path: Path) -> None:
    out = tmp_path / "catalog"
    result = ingest_csv([str(planted)], str(out), MAPPING)

    expected_rejects = {r[0]: why for r, why in PLANTED if why}
    assert isinstance(result, IngestResult)
    assert result.rows_read == len(PLANTED) == result.rows_accepted + result.rows_rejected
    assert result.rows_rejected == len(expected_rejects)
    assert result.reject_reasons == {"missing track_id": 2, "unparsable tempo": 1,
                                     "unparsable popularity": 1, "unparsable explicit": 1,
                                     "unparsable release_date": 1}

    cat = pd.read_parquet(out).set_index("track_id")
    assert sorted(cat.index) == sorted(r[0] for r, why in PLANTED if not why)
    assert "uri" not in cat.columns and "artist_name" in cat.columns
    assert all(cat[f].dtype == "float64" for f in FEATURES)
    assert math.isnan(cat.loc["empty_energy", "energy"])
    assert cat.loc["ok1", "tempo"] == 120.5
    assert cat["release_year"].to_dict() == {"ok1": 2019, "ok2": 2019, "ok3": 1999,
                                             "ok4": 2022, "empty_energy": 2019}
    assert cat.loc["ok1", "release_date"] == "2019-06-14"
    assert cat["explicit"].to_dict()["ok3"] is False and cat.loc["ok1", "explicit"]
    assert cat["popularity"].dtype == "Int64" and pd.isna(cat.loc["ok4", "popularity"])

    rej = pd.read_parquet(out / REJECTS_DIR)
    found = zip(rej["track_id"], zip(rej["reason"], rej["detail"], strict=True), strict=True)
    assert sorted(found) == sorted(expected_rejects.items())
    assert (rej["source_file"] == str(planted)).all()
    # the header is line 1, so row i of the file is on line i + 2
    lines = {r[0]: i + 2 for i, (r, _) in enumerate(PLANTED)}
    assert dict(zip(rej["track_id"], rej["source_line"], strict=True)) == {
        t: lines[t] for t in expected_rejects}
    assert all(pd.api.types.is_string_dtype(rej[c]) for c in rej.columns if c != "source_line")
    assert rej.set_index("track_id").loc["bad_tempo", "tempo"] == "abc"


def test_catalog_readers_skip_rejects(planted: Path, tmp_path: Path) -> None:
    out = tmp_path / "catalog"
    result = ingest_csv([str(planted)], str(out), MAPPING)
    for frame in (dd.read_parquet(str(out)).compute(), pd.read_parquet(out)):
        assert len(frame) == result.rows_accepted
        assert "reason" not in frame.columns


def test_many_blocks_and_files_keep_every_row(tmp_path: Path) -> None:
    rows = [_row(f"t{i}", tempo="bad" if i % 7 == 0 else "100") for i in range(400)]
    a = _write_csv(tmp_path / "a.csv", rows[:250])
    _write_csv(tmp_path / "b.csv", rows[250:])
    result = ingest_csv([str(tmp_path / "*.csv")], str(tmp_path / "out"), MAPPING,
                        blocksize="4KB")
    assert (result.rows_read, result.rows_rejected) == (400, 58)
    assert sorted(pd.read_parquet(tmp_path / "out")["track_id"]) == sorted(
        f"t{i}" for i in range(400) if i % 7)
    rej = pd.read_parquet(tmp_path / "out" / REJECTS_DIR)
    assert (rej["source_file"] == str(a)).sum() == sum(1 for i in range(250) if i % 7 == 0)


# --- errors and atomicity --------------------------------------------------------------------

def _assert_nothing_written(out: Path) -> None:
    assert not out.exists()
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]


def test_missing_required_column_is_named(tmp_path: Path) -> None:
    header = [("bpm" if c == "tempo" else c) for c in HEADER]
    path = _write_csv(tmp_path / "nobpm.csv", [_row()], header)
    out = tmp_path / "out"
    with pytest.raises(MissingColumnsError) as err:
        ingest_csv([str(path)], str(out), MAPPING)
    message = str(err.value)
    assert "tempo" in message and "nobpm.csv" in message and "bpm" in message
    assert "--columns their_name=tempo" in message
    assert isinstance(err.value, ValueError) and err.value.exit_code == 2
    _assert_nothing_written(out)
    # ... and mapping the column fixes it.
    assert ingest_csv([str(path)], str(out), {**MAPPING, "bpm": "tempo"}).rows_accepted == 1


@pytest.mark.parametrize("columns, match", [
    ({"nope": "tempo"}, "not in"),
    ({"uri": "album_uri"}, "not catalog columns"),
    ({"id": "track_id", "artist": "track_id"}, "both mapped"),
    ({"artist": "popularity"}, "would become"),
])
def test_unusable_mapping(planted: Path, tmp_path: Path, columns, match) -> None:
    with pytest.raises(InputError, match=match):
        ingest_csv([str(planted)], str(tmp_path / "out"), columns)


def test_malformed_csv_names_the_file(tmp_path: Path) -> None:
    path = _write_csv(tmp_path / "bad.csv", [_row("a"), _row("b")])
    with path.open("a") as f:
        f.write(",".join(_row("c")) + ",one-too-many\n")
    out = tmp_path / "out"
    with pytest.raises(CorruptFileError, match=r"bad\.csv.*Expected \d+ fields"):
        ingest_csv([str(path)], str(out), MAPPING)
    _assert_nothing_written(out)


@pytest.mark.parametrize("block", [0, 1])
def test_surplus_field_at_block_start_is_not_shifted_silently(tmp_path: Path, block: int) -> None:
    # pandas would silently take the first column as the index and shift the whole block.
    path = _write_csv(tmp_path / "shifted.csv", [_row(f"t{i}") for i in range(100)])
    _, blocks = read_bytes(str(path), delimiter=b"\n", blocksize="2KB")
    first_row = dask.compute(blocks[0][block])[0].split(b"\n")[block == 0]
    # Same byte length, one more field, so the block boundaries stay where they were.
    path.write_bytes(path.read_bytes().replace(first_row, first_row.replace(b"uri:x", b"ur,ix")))
    with pytest.raises(CorruptFileError, match=r"shifted\.csv.*more fields than the header"):
        ingest_csv([str(path)], str(tmp_path / "out"), MAPPING, blocksize="2KB")
    _assert_nothing_written(tmp_path / "out")


def test_malformed_csv_among_several_names_the_right_file(tmp_path: Path) -> None:
    _write_csv(tmp_path / "a_good.csv", [_row("a")])
    bad = _write_csv(tmp_path / "b_bad.csv", [_row("b")])
    with bad.open("a") as f:
        f.write(",".join(_row("c")) + ",extra\n")
    with pytest.raises(CorruptFileError, match=r"b_bad\.csv"):
        ingest_csv([str(tmp_path / "*.csv")], str(tmp_path / "out"), MAPPING)


@pytest.mark.parametrize("make", ["glob", "header_only", "empty_file"])
def test_no_input_rows(tmp_path: Path, make: str) -> None:
    if make == "glob":
        paths = [str(tmp_path / "nothing-*.csv")]
    else:
        path = tmp_path / "empty.csv"
        path.write_text(",".join(HEADER) + "\n" if make == "header_only" else "")
        paths = [str(path)]
    out = tmp_path / "out"
    with pytest.raises(InputError, match="nothing-|empty"):
        ingest_csv(paths, str(out), MAPPING)
    _assert_nothing_written(out)


def test_files_with_different_headers(planted: Path, tmp_path: Path) -> None:
    _write_csv(tmp_path / "other.csv", [_row()[:-1]], HEADER[:-1])
    with pytest.raises(InputError, match="different columns"):
        ingest_csv([str(planted), str(tmp_path / "other.csv")], str(tmp_path / "out"), MAPPING)


def test_failure_while_committing_leaves_nothing(planted: Path, tmp_path: Path,
                                                 monkeypatch) -> None:
    import sonicatlas.storage as storage

    def boom(*args):
        raise OSError("disk gone")

    monkeypatch.setattr(storage, "move_into_place", boom)
    out = tmp_path / "out"
    with pytest.raises(OSError, match="disk gone"):
        ingest_csv([str(planted)], str(out), MAPPING)
    _assert_nothing_written(out)


def test_existing_output_needs_overwrite(planted: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    ingest_csv([str(planted)], str(out), MAPPING)
    (out / "part.0.parquet").write_bytes(b"old")
    beside = sorted(p.name for p in tmp_path.iterdir())  # planted.csv and out
    with pytest.raises(OutputExistsError, match="overwrite"):
        ingest_csv([str(planted)], str(out), MAPPING)
    assert (out / "part.0.parquet").read_bytes() == b"old"
    ingest_csv([str(planted)], str(out), MAPPING, overwrite=True)
    assert len(pd.read_parquet(out)) == sum(1 for _, why in PLANTED if not why)
    # neither the partial output nor the old one set aside is left beside it
    assert sorted(p.name for p in tmp_path.iterdir()) == beside


def test_overwrite_replaces_only_a_catalog_ingest_wrote(planted: Path, tmp_path: Path) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("a user's file")
    with pytest.raises(OutputExistsError, match="not a catalog sonicatlas ingest wrote"):
        ingest_csv([str(planted)], str(out), MAPPING, overwrite=True)
    assert [p.name for p in out.iterdir()] == ["notes.txt"]
    assert (out / "notes.txt").read_text() == "a user's file"


def test_runs_on_a_distributed_cluster(planted: Path, tmp_path: Path) -> None:
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                      dashboard_address=None) as cluster, Client(cluster):
        on_cluster = ingest_csv([str(planted)], str(tmp_path / "a"), MAPPING)
    local = ingest_csv([str(planted)], str(tmp_path / "b"), MAPPING)
    assert dataclasses.replace(on_cluster, out=local.out) == local
    assert on_cluster.rows_accepted == sum(1 for _, why in PLANTED if not why)
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "a"), pd.read_parquet(tmp_path / "b"))


# --- the real files --------------------------------------------------------------------------

@pytest.mark.parametrize("csv, mapping", [("spotify_songs.csv", "spotify_songs.yaml"),
                                          ("rolling_stones_spotify.csv", "rolling_stones.yaml")])
def test_real_file_ingests_every_row(tmp_path: Path, csv: str, mapping: str) -> None:
    path = REAL / csv
    if not path.exists():
        pytest.skip(f"{path} not present")
    out = tmp_path / "out"
    result = ingest_csv([str(path)], str(out), load_column_mapping(
        str(REPO / "conf/sources" / mapping)))
    assert result.rows_read == len(pd.read_csv(path))  # pandas' own count is the reference
    assert result.rows_accepted + result.rows_rejected == result.rows_read
    cat = pd.read_parquet(out)
    assert len(cat) == result.rows_accepted and set(REQUIRED) <= set(cat.columns)
    dated = cat["release_date"].notna()
    assert dated.any() and cat.loc[dated, "release_year"].notna().all()


# --- column names, ids, delimiters, lines ------------------------------------------------------

def _usual_frame(n: int = 30) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"ID": [f"t{i}" for i in range(n)],
                          "name": [f"song {i}" for i in range(n)],
                          "artists": [f"artist {i % 4}" for i in range(n)],
                          "album": [f"album {i % 5}" for i in range(n)],
                          "year": rng.integers(1960, 2024, n),
                          "playlist_genre": ["pop", "rock"] * (n // 2),
                          "track_popularity": rng.integers(0, 100, n), "uri": "x", "notes": "y"})
    for name in FEATURES:
        frame[name] = rng.uniform(0.1, 0.9, n) * (200_000 if name == "duration_ms" else 1)
    return frame


def test_usual_column_names_need_no_mapping(tmp_path: Path) -> None:
    frame = _usual_frame()
    frame.to_csv(tmp_path / "usual.csv", index=False)
    result = ingest_csv([str(tmp_path / "usual.csv")], str(tmp_path / "out"))
    assert result.dropped == ("uri", "notes")
    cat = pd.read_parquet(tmp_path / "out")
    expected = {"ID": "track_id", "name": "track_name", "artists": "artist_name",
                "album": "album_name", "year": "release_year", "playlist_genre": "genre",
                "track_popularity": "popularity"}
    for source, target in expected.items():
        assert cat[target].astype(str).tolist() == frame[source].astype(str).tolist(), target


def test_id_from_makes_stable_documented_ids(tmp_path: Path) -> None:
    import hashlib

    frame = _usual_frame().drop(columns="ID")
    frame.loc[3, "artists"] = " "
    frame.to_csv(tmp_path / "noid.csv", index=False)
    with pytest.raises(MissingColumnsError, match="--id-from"):
        ingest_csv([str(tmp_path / "noid.csv")], str(tmp_path / "fail"))
    result = ingest_csv([str(tmp_path / "noid.csv")], str(tmp_path / "out"),
                        id_from=("artists", "track_name"))
    assert (result.rows_accepted, result.reject_reasons) == (29, {"missing track_id": 1})
    cat = pd.read_parquet(tmp_path / "out")
    reference = [hashlib.sha256(f"{a}\x1f{n}".encode()).hexdigest()[:16]
                 for a, n in zip(frame["artists"], frame["name"], strict=True)]
    assert cat["track_id"].tolist() == reference[:3] + reference[4:]
    rej = pd.read_parquet(tmp_path / "out" / REJECTS_DIR)
    assert rej["detail"].tolist() == ["artist_name='', track_name='song 3'"]
    again = ingest_csv([str(tmp_path / "noid.csv")], str(tmp_path / "again"),
                       id_from=("artist_name", "name"))
    assert again.rows_accepted == 29
    assert pd.read_parquet(tmp_path / "again")["track_id"].tolist() == cat["track_id"].tolist()


@pytest.mark.parametrize("given", [{}, {"sep": ";", "decimal": ","}])
def test_semicolons_and_decimal_commas(tmp_path: Path, given: dict) -> None:
    frame = _usual_frame()
    frame.to_csv(tmp_path / "eu.csv", index=False, sep=";", decimal=",")
    result = ingest_csv([str(tmp_path / "eu.csv")], str(tmp_path / "out"), **given)
    assert (result.format.sep, result.format.decimal) == (";", ",")
    assert result.format.detected == (() if given else ("delimiter", "decimal"))
    assert result.rows_accepted == len(frame)
    cat = pd.read_parquet(tmp_path / "out")
    for name in FEATURES:
        np.testing.assert_array_equal(cat[name].to_numpy(), frame[name].to_numpy())


def test_source_lines_across_blocks_and_files(tmp_path: Path) -> None:
    rows = [_row(f"t{i}", tempo="bad" if i % 7 == 0 else "100") for i in range(400)]
    _write_csv(tmp_path / "a.csv", rows[:250])
    _write_csv(tmp_path / "b.csv", rows[250:])
    with (tmp_path / "b.csv").open("a") as f:  # blank lines: counted, but not rows
        f.write("\n" + ",".join(_row("t400")) + "\n\n")
    result = ingest_csv([str(tmp_path / "*.csv")], str(tmp_path / "out"), MAPPING,
                        blocksize="4KB")
    assert result.rows_read == 401 == sum(len(pd.read_csv(tmp_path / f"{n}.csv")) for n in "ab")
    both = pd.concat([pd.read_parquet(tmp_path / "out"),
                      pd.read_parquet(tmp_path / "out" / REJECTS_DIR)])
    for name in ("a.csv", "b.csv"):  # the reference: each id's line number in the file
        lines = (tmp_path / name).read_text().splitlines()
        truth = {line.split(",")[0]: n for n, line in enumerate(lines, 1) if line}
        truth.pop("id")
        mine = both[both["source_file"] == str(tmp_path / name)]
        got = dict(zip(mine["track_id"], mine["source_line"], strict=True))
        assert got == truth


def test_a_quoted_field_over_several_lines_keeps_the_lines_right(tmp_path: Path) -> None:
    rows = [_row(f"t{i}") for i in range(6)]
    rows[2][HEADER.index("artist")] = "two\nline artist"
    rows[4][HEADER.index("artist")] = "three\n\nlines"
    path = _write_csv(tmp_path / "quoted.csv", rows)
    ingest_csv([str(path)], str(tmp_path / "out"), MAPPING, blocksize=None)
    cat = pd.read_parquet(tmp_path / "out")
    # the reference: where each id starts in the file's text
    text = path.read_text().split("\n")
    truth = {line.split(",")[0]: n for n, line in enumerate(text, 1) if line.startswith("t")}
    assert dict(zip(cat["track_id"], cat["source_line"], strict=True)) == truth
    assert cat.set_index("track_id").loc["t4", "artist_name"] == "three\n\nlines"


def test_real_catalog_keeps_its_metadata_without_a_mapping(tmp_path: Path) -> None:
    path = REAL / "spotify_songs.csv"
    if not path.exists():
        pytest.skip(f"{path} not present")
    result = ingest_csv([str(path)], str(tmp_path / "out"))
    assert set(result.dropped) == {"playlist_name", "playlist_id"}
    cat = pd.read_parquet(tmp_path / "out")
    source = pd.read_csv(path, dtype=str, keep_default_na=False)
    assert len(cat) == len(source)
    for ours, theirs in [("track_name", "track_name"), ("artist_name", "track_artist"),
                         ("album_name", "track_album_name"), ("genre", "playlist_genre"),
                         ("popularity", "track_popularity")]:
        assert cat[ours].astype(str).replace("<NA>", "None").replace("None", "").tolist() == \
            source[theirs].tolist(), ours
    assert (cat["release_year"] == source["track_album_release_date"].str[:4].astype(int)).all()


def _cli(*args: str):
    import subprocess
    import sys

    env = {"PYTHONPATH": f"{REPO / 'lib'}:{REPO}", "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, "-m", "sonicatlas.cli", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_cli_lists_dropped_columns_in_one_line_and_warns_of_no_shuffle(tmp_path: Path) -> None:
    _usual_frame().to_csv(tmp_path / "usual.csv", index=False)
    done = _cli("ingest", str(tmp_path / "usual.csv"), "--out", str(tmp_path / "out"))
    assert done.returncode == 0, done.stderr
    assert "Columns dropped: uri, notes\n" in done.stdout
    assert "delimiter ',' (detected)" in done.stdout
    assert "shuffle" not in (done.stdout + done.stderr).lower()


@pytest.mark.slow
@pytest.mark.parametrize("out", ["/sys/sonicatlas-catalog", "{tmp}/a-file/catalog"])
def test_cli_out_that_cannot_be_written_is_one_line(tmp_path: Path, out: str) -> None:
    _usual_frame().to_csv(tmp_path / "usual.csv", index=False)
    (tmp_path / "a-file").write_text("not a directory")
    done = _cli("ingest", str(tmp_path / "usual.csv"), "--out", out.format(tmp=tmp_path))
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: cannot write the catalog at")


@pytest.mark.slow
def test_a_run_over_an_ingested_catalog_accounts_for_every_csv_row(tmp_path: Path) -> None:
    from conftest import blob_tracks, run_job

    frame = blob_tracks(600, seed=9).astype({"tempo": object, "energy": object})
    frame.loc[5, "tempo"] = "fast"       # ingest rejects these three
    frame.loc[9, "track_id"] = ""
    frame.loc[12, "energy"] = "high"
    frame.loc[20, "duration_ms"] = 1e30  # the run rejects these two
    frame.loc[21, "valence"] = None
    frame.to_csv(tmp_path / "tracks.csv", index=False)
    ingest_csv([str(tmp_path / "tracks.csv")], str(tmp_path / "catalog"))
    summary = run_job(tmp_path / "run", f"input={tmp_path / 'catalog'}", "k=3")

    rows = len(pd.read_csv(tmp_path / "tracks.csv"))  # pandas' own count of the CSV
    assigned = len(pd.read_parquet(tmp_path / "run" / "assignments"))
    rejects = pd.read_parquet(tmp_path / "run" / "summary" / "rejects")
    assert summary.counts["rows_read"] == rows == assigned + len(rejects)
    found = {line: (reason, detail) for line, reason, detail in zip(
        rejects["source_line"], rejects["reason"], rejects["detail"], strict=True)}
    assert found == {7: ("unparsable tempo", "'fast'"), 11: ("missing track_id", "''"),
                     14: ("unparsable energy", "'high'"),
                     22: ("duration_ms outside (0, 8.64e+07]", "1e+30"),
                     23: ("missing valence", "nan")}
    assert (rejects["source_file"] == str(tmp_path / "tracks.csv")).all()


@pytest.mark.parametrize("sep", ["\t", "|"])
def test_other_delimiters_are_detected(tmp_path: Path, sep: str) -> None:
    frame = _usual_frame()
    frame.to_csv(tmp_path / "x.csv", index=False, sep=sep)
    result = ingest_csv([str(tmp_path / "x.csv")], str(tmp_path / "out"))
    assert (result.format.sep, result.format.decimal) == (sep, ".")
    cat = pd.read_parquet(tmp_path / "out")
    np.testing.assert_array_equal(cat["tempo"].to_numpy(), frame["tempo"].to_numpy())


def test_source_file_is_the_url_as_given_on_other_file_systems(planted: Path) -> None:
    import fsspec

    fs = fsspec.filesystem("memory")
    fs.pipe("/ingest-test/in/planted.csv", planted.read_bytes())
    try:
        result = ingest_csv(["memory://ingest-test/in/*.csv"], "memory://ingest-test/out",
                            MAPPING)
        rej = pd.read_parquet("memory://ingest-test/out/_rejects")
        assert result.rows_rejected == len(rej) == sum(1 for _, why in PLANTED if why)
        assert set(rej["source_file"]) == {"memory:///ingest-test/in/planted.csv"}
    finally:
        fs.rm("/ingest-test", recursive=True)
