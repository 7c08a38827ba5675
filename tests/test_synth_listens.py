"""The synthetic listening logs and their listeners (sonicatlas.synthetic.listens, listeners)."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

from sonicatlas.errors import MissingColumnsError, OutputExistsError
from sonicatlas.synthetic.listeners import COUNTRIES, generate_users, taste_parameters
from sonicatlas.synthetic.listens import (
    GeneratedListens,
    build_track_pool,
    generate_listens,
    generate_listens_partition,
    listen_window,
)
from sonicatlas.synthetic.tracks import generate_tracks

SEED, TASTES, USERS, LISTENS, PER_PARTITION = 5, 4, 1_500, 60_000, 25_000


@pytest.fixture(scope="module")
def catalog(tmp_path_factory) -> str:
    out = tmp_path_factory.mktemp("catalog") / "tracks"
    generate_tracks(str(out), rows=20_000, seed=1, rows_per_partition=10_000)
    return str(out)


@pytest.fixture(scope="module")
def tracks(catalog) -> pd.DataFrame:
    return pd.read_parquet(catalog, columns=["track_id", "genre", "popularity"])


@pytest.fixture(scope="module")
def made(catalog, tmp_path_factory):
    out = tmp_path_factory.mktemp("listens") / "logs"
    result = generate_listens(catalog, str(out), users=USERS, listens=LISTENS, seed=SEED,
                              rows_per_partition=PER_PARTITION, tastes=TASTES)
    return result, pd.read_parquet(out / "listens"), pd.read_parquet(out / "users")


def test_row_counts_and_schema(made):
    result, listens, users = made
    assert result == GeneratedListens(result.out, LISTENS, USERS, 3, SEED)
    files = sorted(os.listdir(f"{result.out}/listens"))
    sizes = [len(pd.read_parquet(f"{result.out}/listens/{f}")) for f in files]
    assert sorted(sizes) == [10_000, 25_000, 25_000] and len(listens) == LISTENS
    assert list(listens.columns) == ["user_id", "track_id", "ts", "ms_played"]
    assert str(listens["ts"].dtype) == "datetime64[us, UTC]"
    assert listens["ms_played"].dtype == np.int64
    assert listens["ms_played"].between(30_000, 360_000).all()
    assert list(users.columns) == ["user_id", "country", "subscription", "taste_group"]
    assert len(users) == USERS and users["taste_group"].dtype == np.int64


def test_ids_and_ground_truth(made, tracks):
    _, listens, users = made
    assert users["user_id"].is_unique
    assert users["user_id"].str.fullmatch(r"user_\d{9}").all()
    assert listens["user_id"].isin(users["user_id"]).all()
    assert listens["track_id"].isin(tracks["track_id"]).all()
    assert set(users["taste_group"]) == set(range(TASTES))
    assert set(users["subscription"]) == {"free", "premium"}
    assert set(users["country"]) <= set(COUNTRIES)


def test_timestamps_inside_window_and_sessions(made):
    _, listens, _ = made
    start, end = listen_window(SEED)
    assert end - start == pd.Timedelta(days=90)
    assert listens["ts"].min() >= start and listens["ts"].max() < end
    # Consecutive listens of a user are mostly one track apart: sessions.
    gap = listens["ts"].diff().dt.total_seconds()[listens["user_id"].eq(listens["user_id"].shift())]
    assert gap.between(30, 400).mean() > 0.7


def test_group_genre_shares_and_rhythm_follow_parameters(made, tracks):
    _, listens, users = made
    params = taste_parameters(SEED, TASTES)
    frame = listens.merge(users, on="user_id").merge(tracks, on="track_id")
    shares = pd.crosstab(frame["taste_group"], frame["genre"], normalize="index")
    shares = shares.reindex(columns=list(params.genres), fill_value=0.0).to_numpy()
    assert (shares.argmax(1) == params.preference.argmax(1)).all()
    assert len(set(shares.argmax(1))) == TASTES and (shares.max(1) > 0.4).all()  # distinct groups
    np.testing.assert_allclose(shares, params.preference, atol=0.05)
    weekday = frame[frame["ts"].dt.dayofweek < 5]
    for group, hours in weekday.groupby("taste_group")["ts"]:
        distance = abs(hours.dt.hour.mode()[0] + 0.5 - params.peak_hour[group])
        assert min(distance, 24 - distance) <= 2.5, (group, params.rhythm[group])


def test_popular_tracks_are_played_more(made, tracks):
    _, listens, _ = made
    plays = tracks["track_id"].map(listens["track_id"].value_counts()).fillna(0)
    assert plays.astype(float).corr(tracks["popularity"].astype(float), method="spearman") > 0.3


def test_partition_is_deterministic(catalog):
    pool = build_track_pool(catalog, SEED, per_genre=500)
    users = generate_users(0, 300, SEED, TASTES)
    pd.testing.assert_frame_equal(generate_users(0, 300, SEED, TASTES), users)
    a, again, other = (generate_listens_partition(users, pool, 2_000, SEED, TASTES, p)
                       for p in (1, 1, 2))
    pd.testing.assert_frame_equal(a, again)
    assert not a["ts"].equals(other["ts"])
    assert not generate_users(0, 300, SEED + 1, TASTES)["taste_group"].equals(users["taste_group"])


def test_track_pool_is_capped_and_independent_of_layout(catalog, tracks, tmp_path):
    pool = build_track_pool(catalog, SEED, per_genre=500)
    assert len(pool.ids) == 500 * len(pool.genres) == 3_000
    assert set(pool.ids.to_pylist()) <= set(tracks["track_id"])
    shuffled = tmp_path / "shuffled"
    shuffled.mkdir()
    rows = tracks.sample(frac=1, random_state=0)
    for i, index in enumerate(np.array_split(np.arange(len(rows)), 3)):
        rows.iloc[index].to_parquet(shuffled / f"part.{i}.parquet", index=False)
    again = build_track_pool(str(shuffled), SEED, per_genre=500)
    assert again.ids.equals(pool.ids) and np.array_equal(again.bounds, pool.bounds)


def test_refuses_to_overwrite(catalog, made, tmp_path):
    result, listens, _ = made
    for error in (FileExistsError, OutputExistsError):  # the CLI reports the latter cleanly
        with pytest.raises(error):
            generate_listens(catalog, result.out, users=10, listens=100, seed=SEED)
    out = tmp_path / "small"
    generate_listens(catalog, str(out), users=10, listens=100, seed=SEED)
    generate_listens(catalog, str(out), users=20, listens=200, seed=SEED, overwrite=True)
    assert len(pd.read_parquet(out / "listens")) == 200
    assert os.listdir(tmp_path) == ["small"]  # no hidden leftovers
    with pytest.raises(ValueError):
        generate_listens(catalog, str(tmp_path / "x"), users=2, listens=100, rows_per_partition=10)


def test_catalog_without_popularity_is_refused(tracks, tmp_path):
    catalog = tmp_path / "catalog"
    catalog.mkdir()
    tracks.drop(columns="popularity").to_parquet(catalog / "part.0.parquet", index=False)
    with pytest.raises(MissingColumnsError, match="popularity"):
        generate_listens(str(catalog), str(tmp_path / "out"), users=10, listens=100)
    assert sorted(os.listdir(tmp_path)) == ["catalog"]


def test_same_data_on_a_distributed_cluster(catalog, made, tmp_path):
    distributed = pytest.importorskip("distributed")
    result, listens, users = made
    out = tmp_path / "logs"
    with distributed.LocalCluster(n_workers=1, processes=False,
                                  dashboard_address="127.0.0.1:0") as cluster:
        with distributed.Client(cluster):
            generate_listens(catalog, str(out), users=USERS, listens=LISTENS, seed=SEED,
                             rows_per_partition=PER_PARTITION, tastes=TASTES)
    pd.testing.assert_frame_equal(pd.read_parquet(out / "listens"), listens)
    pd.testing.assert_frame_equal(pd.read_parquet(out / "users"), users)
