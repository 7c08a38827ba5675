"""Tests for the synthetic catalog generator (sonicatlas.synthetic.tracks)."""

from __future__ import annotations

import json
from pathlib import Path

import fsspec
import numpy as np
import pandas as pd
import pytest

from sonicatlas.contract import FEATURES, TRACK_ID, VALID_RANGES
from sonicatlas.synthetic.params import load_genre_params
from sonicatlas.synthetic.tracks import (
    GeneratedCatalog,
    generate_tracks,
    generate_tracks_partition,
    main,
)

REAL_CSV = Path(__file__).resolve().parents[2] / "shared/data/real/spotify_songs.csv"
STRINGS = [TRACK_ID, "track_name", "artist_id", "artist_name", "genre"]
SAMPLE_ROWS = 200_000


@pytest.fixture(scope="module")
def params() -> dict:
    return load_genre_params()


@pytest.fixture(scope="module")
def sample(params) -> pd.DataFrame:
    """A 200k-track catalog made of four partitions sharing one artist pool."""
    parts = [
        generate_tracks_partition(p, SAMPLE_ROWS // 4, 7, params, SAMPLE_ROWS // 12)
        for p in range(4)
    ]
    return pd.concat(parts, ignore_index=True)


@pytest.fixture(scope="module")
def real() -> pd.DataFrame:
    """The real tracks, deduplicated and inside the contract's ranges (computed independently)."""
    if not REAL_CSV.exists():
        pytest.skip(f"{REAL_CSV} is absent")
    df = pd.read_csv(REAL_CSV).drop_duplicates(TRACK_ID)
    inside = np.logical_and.reduce([VALID_RANGES[f].contains(df[f].to_numpy()) for f in FEATURES])
    return df[inside]


def test_partition_is_deterministic(params):
    a = generate_tracks_partition(3, 2_000, 11, params, 500)
    pd.testing.assert_frame_equal(a, generate_tracks_partition(3, 2_000, 11, params, 500))
    other_partition = generate_tracks_partition(4, 2_000, 11, params, 500)
    other_seed = generate_tracks_partition(3, 2_000, 12, params, 500)
    for other in (other_partition, other_seed):
        assert not np.allclose(a["energy"], other["energy"])
        assert not set(a[TRACK_ID]) & set(other[TRACK_ID])


def test_packaged_params_are_the_default(params):
    pd.testing.assert_frame_equal(
        generate_tracks_partition(0, 100, 1, params, 50),
        generate_tracks_partition(0, 100, 1, None, 50),
    )


def test_schema_and_empty_partition(params):
    df = generate_tracks_partition(0, 10, 0, params, 50)
    empty = generate_tracks_partition(0, 0, 0, params, 50)
    expected = [*STRINGS, "popularity", "release_year", *FEATURES]
    assert list(df.columns) == list(empty.columns) == expected
    assert len(empty) == 0 and (df.dtypes == empty.dtypes).all()
    assert all(pd.api.types.is_string_dtype(df[c]) for c in STRINGS)
    assert (df[list(FEATURES)].dtypes == np.float64).all()
    assert (df[["popularity", "release_year"]].dtypes == np.int64).all()


def test_track_ids_unique_across_partitions(params):
    # Includes the largest partition number: ids must not wrap or collide by construction.
    partitions = [0, 1, 2, 1_000, 2**32 - 1]
    ids = pd.concat(
        [generate_tracks_partition(p, 20_000, 5, params, 2_000)[TRACK_ID] for p in partitions]
    )
    assert ids.is_unique
    assert ids.str.fullmatch(r"[0-9A-Za-z]{22}").all()


def test_features_inside_valid_ranges(sample):
    for feature in FEATURES:
        values = sample[feature].to_numpy()
        assert VALID_RANGES[feature].contains(values).all(), feature
    assert (sample["tempo"] > 0).all() and (sample["tempo"] <= 260).all()
    assert sample["popularity"].between(0, 100).all()
    assert sample["release_year"].between(1950, 2021).all()
    # Instrumentalness keeps its zero mass.
    assert 0.5 < (sample["instrumentalness"] == 0).mean() < 0.8


def test_genre_means_match_real_data(sample, real):
    generated = sample.groupby("genre")[list(FEATURES)].mean()
    reference = real.groupby("playlist_genre")[list(FEATURES)].mean()
    assert sorted(generated.index) == sorted(reference.index)
    for feature in FEATURES:
        got, want = generated[feature], reference.loc[generated.index, feature]
        if VALID_RANGES[feature].high == 1.0:
            assert (got - want).abs().max() < 0.02, feature
        else:
            assert ((got - want) / want).abs().max() < 0.03, feature


def test_genre_shares_follow_real_data(sample, real):
    generated = sample["genre"].value_counts(normalize=True)
    reference = real["playlist_genre"].value_counts(normalize=True)
    # Loose: whole artists (with their home genre) are drawn, so shares wander a little.
    assert (generated - reference.loc[generated.index]).abs().max() < 0.05


def test_artists_are_long_tailed_and_keep_a_genre(sample):
    counts = sample["artist_id"].value_counts()
    top = counts.iloc[: max(1, len(counts) // 100)]
    assert top.sum() / len(sample) > 0.10
    assert counts.median() <= 10
    assert counts.iloc[0] / len(sample) < 0.02  # no artist owns a big slice of the catalog
    per_genre = sample.groupby(["artist_id", "genre"]).size()
    main_genre_share = per_genre.groupby(level="artist_id").max() / counts
    assert main_genre_share[counts >= 10].median() > 0.8
    # An artist is the same artist in every partition.
    assert (sample.groupby("artist_id")["artist_name"].nunique() == 1).all()


def test_learn_reproduces_packaged_params(tmp_path, params):
    if not REAL_CSV.exists():
        pytest.skip(f"{REAL_CSV} is absent")
    out = tmp_path / "params.json"
    main(["learn", str(REAL_CSV), "--out", str(out)])
    learned = json.loads(out.read_text())
    assert out.stat().st_size < 32_000
    assert learned["columns"] == params["columns"]
    for genre, packaged in params["genres"].items():
        got = learned["genres"][genre]
        assert got["share"] == pytest.approx(packaged["share"], abs=1e-4)
        for column, q in packaged["quantiles"].items():
            np.testing.assert_allclose(got["quantiles"][column], q, atol=2e-3)
        np.testing.assert_allclose(got["corr_upper"], packaged["corr_upper"], atol=2e-3)


def _check_catalog(path: Path, catalog: GeneratedCatalog, rows: int) -> pd.DataFrame:
    assert catalog == GeneratedCatalog(out=str(path), rows=rows, npartitions=3, seed=1)
    df = pd.read_parquet(path)
    assert len(df) == rows and df[TRACK_ID].is_unique
    assert list(df.columns) == [*STRINGS, "popularity", "release_year", *FEATURES]
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary left behind
    return df


def test_generate_tracks_without_cluster(tmp_path):
    out = tmp_path / "catalog"
    df = _check_catalog(
        out, generate_tracks(str(out), 2_500, seed=1, rows_per_partition=1_000), 2_500
    )
    again = tmp_path / "again" / "catalog"
    generate_tracks(str(again), 2_500, seed=1, rows_per_partition=1_000)
    pd.testing.assert_frame_equal(df, pd.read_parquet(again))


def test_generate_tracks_on_local_cluster(tmp_path):
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(
        n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None
    )
    with cluster, distributed.Client(cluster):
        out = tmp_path / "catalog"
        catalog = generate_tracks(str(out), 2_100, seed=1, rows_per_partition=1_000)
    _check_catalog(out, catalog, 2_100)


def test_generate_tracks_refuses_to_overwrite(tmp_path):
    out = tmp_path / "catalog"
    out.mkdir()
    generate_tracks(str(out), 100)  # an empty directory is fine
    before = sorted(p.name for p in out.iterdir())
    with pytest.raises(FileExistsError):
        generate_tracks(str(out), 300, rows_per_partition=100)
    assert sorted(p.name for p in out.iterdir()) == before
    generate_tracks(str(out), 300, rows_per_partition=100, overwrite=True)
    assert len(pd.read_parquet(out)) == 300
    assert [p.name for p in tmp_path.iterdir()] == ["catalog"]


def test_generate_tracks_to_fsspec_url():
    fs = fsspec.filesystem("memory")
    try:
        catalog = generate_tracks("memory://synth-test/catalog", 250, rows_per_partition=100)
        assert catalog.npartitions == 3
        assert len(pd.read_parquet("memory://synth-test/catalog")) == 250
        assert fs.ls("/synth-test", detail=False) == ["/synth-test/catalog"]
    finally:
        fs.rm("/synth-test", recursive=True)
