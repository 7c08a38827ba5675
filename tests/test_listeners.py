"""Listener features against a plain pandas computation on a small hand-built log."""

from __future__ import annotations

import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest
from scipy.stats import entropy

from sonicatlas.contract import FEATURES
from sonicatlas.listeners.checks import check_listens
from sonicatlas.listeners.users import feature_columns, user_features

N_CLUSTERS = 3
NOW = pd.Timestamp("2024-07-02", tz="UTC")  # after every generated play


def make_tracks() -> pd.DataFrame:
    """12 tracks in 3 clusters by 5 artists; track t11 has no artist."""
    rng = np.random.default_rng(1)
    tracks = pd.DataFrame({"track_id": [f"t{i:02d}" for i in range(12)],
                           "cluster": np.arange(12) % N_CLUSTERS,
                           "artist_name": [f"artist {i % 5}" for i in range(11)] + [None]})
    for name in FEATURES:
        tracks[name] = rng.uniform(0, 1, 12)
    tracks["tempo"] *= 200
    tracks["duration_ms"] = rng.integers(60_000, 400_000, 12)  # int: averaged as float
    return tracks


def make_listens(rows: int = 300, weight: str = "play_count") -> pd.DataFrame:
    """5 users with distinct habits over a month of 2024, times spread over every hour."""
    rng = np.random.default_rng(2)
    user = rng.choice(5, rows, p=[0.4, 0.25, 0.15, 0.15, 0.05])
    # User u skews to tracks of cluster u % 3, so the shares differ by user.
    track = np.where(rng.random(rows) < 0.6, (user % 3) + 3 * rng.integers(0, 4, rows),
                     rng.integers(0, 12, rows))
    seconds = rng.integers(0, 30 * 86_400, rows) + user * 3_600
    listens = pd.DataFrame({
        "user_id": [f"u{u}" for u in user],
        "track_id": [f"t{t:02d}" for t in track],
        "ts": pd.Timestamp("2024-06-01", tz="UTC") + pd.to_timedelta(seconds, unit="s"),
        "ms_played": rng.integers(1_000, 300_000, rows),
    })
    if weight == "play_count":
        listens = listens.drop(columns="ms_played")
        listens["play_count"] = rng.integers(1, 5, rows)
    return listens


def reference(listens: pd.DataFrame, tracks: pd.DataFrame, n_clusters: int = N_CLUSTERS,
              now: pd.Timestamp | None = None) -> pd.DataFrame:
    """The features by a per-user loop in plain pandas."""
    weights = listens["play_count"] if "play_count" in listens else 1
    log = listens.assign(w=weights).merge(tracks, on="track_id")
    now = log["ts"].max() if now is None else now
    rows = {}
    for user, d in log.groupby("user_id"):
        total = d["w"].sum()
        row = {"plays": total, "active_days": d["ts"].dt.date.nunique(),
               "recency_days": (now - d["ts"].max()) / pd.Timedelta(days=1)}
        for name in FEATURES:
            row[f"mean_{name}"] = np.average(d[name].astype(float), weights=d["w"])
        by_cluster = np.array([d.loc[d["cluster"] == c, "w"].sum()
                               for c in range(n_clusters)])
        for c in range(n_clusters):
            row[f"share_cluster_{c}"] = by_cluster[c] / total
        row["cluster_entropy"] = entropy(by_cluster) if by_cluster.sum() else np.nan
        by_artist = d.dropna(subset=["artist_name"]).groupby("artist_name")["w"].sum()
        row["artist_entropy"] = entropy(by_artist) if len(by_artist) else np.nan
        for h in range(24):
            row[f"hour_{h}"] = d.loc[d["ts"].dt.hour == h, "w"].sum() / total
        for day in range(7):
            row[f"weekday_{day}"] = d.loc[d["ts"].dt.weekday == day, "w"].sum() / total
        rows[user] = row
    return pd.DataFrame.from_dict(rows, orient="index")


def computed(result: dd.DataFrame) -> pd.DataFrame:
    out = result.compute().sort_index()
    out.index = out.index.astype(object)
    return out


def assert_matches(result: dd.DataFrame, expected: pd.DataFrame) -> None:
    got = computed(result)
    assert list(got.columns) == feature_columns(N_CLUSTERS)
    assert list(got.index) == sorted(expected.index)
    pd.testing.assert_frame_equal(got, expected.loc[got.index, got.columns], check_dtype=False,
                                  check_names=False, check_index_type=False,
                                  rtol=1e-9, atol=1e-9)


def features_of(listens: pd.DataFrame, tracks: pd.DataFrame, parts: int = 3, **kwargs):
    return user_features(dd.from_pandas(listens, npartitions=parts),
                         dd.from_pandas(tracks, npartitions=2), N_CLUSTERS, **kwargs)


# -- user_features ----------------------------------------------------------------------------

@pytest.mark.parametrize("split_out", [1, 3])
def test_features_match_pandas_with_play_count(split_out):
    listens, tracks = make_listens(), make_tracks()
    assert (listens["play_count"] > 1).any()
    result = features_of(listens, tracks, split_out=split_out)
    assert result.npartitions == split_out  # distributed by user, not gathered
    assert_matches(result, reference(listens, tracks))


def test_features_match_pandas_with_ms_played():
    listens, tracks = make_listens(weight="ms_played"), make_tracks()
    result = features_of(listens, tracks, now=NOW)
    assert_matches(result, reference(listens, tracks, now=NOW))
    plays = computed(result)["plays"]
    assert (plays == listens.groupby("user_id").size().loc[plays.index]).all()


def test_play_count_is_that_many_plays():
    listens, tracks = make_listens(60), make_tracks()
    repeated = listens.loc[listens.index.repeat(listens["play_count"])].drop(columns="play_count")
    repeated["ms_played"] = 1_000
    pd.testing.assert_frame_equal(computed(features_of(listens, tracks)),
                                  computed(features_of(repeated, tracks)), rtol=1e-12)


@pytest.mark.parametrize("split_out", [1, 3])
def test_same_result_for_1_and_4_partitions(split_out):
    listens, tracks = make_listens(), make_tracks()
    one = computed(features_of(listens, tracks, parts=1, split_out=split_out))
    four = computed(features_of(listens, tracks, parts=4, split_out=split_out))
    pd.testing.assert_frame_equal(one, four, rtol=1e-12)


def test_shares_sum_to_one_and_entropies_are_bounded():
    got = computed(features_of(make_listens(), make_tracks()))
    for prefix, width in (("share_cluster_", N_CLUSTERS), ("hour_", 24), ("weekday_", 7)):
        shares = got[[f"{prefix}{i}" for i in range(width)]].sum(axis=1)
        np.testing.assert_allclose(shares, 1.0, rtol=1e-12)
    assert got["cluster_entropy"].between(0, np.log(N_CLUSTERS)).all()
    assert got["artist_entropy"].between(0, np.log(5)).all()


def test_unassigned_clusters_count_in_plays_but_in_no_share():
    listens, tracks = make_listens(), make_tracks()
    tracks.loc[tracks["track_id"].isin(["t00", "t04"]), "cluster"] = -1  # noise
    result = features_of(listens, tracks)
    assert_matches(result, reference(listens, tracks))
    shares = computed(result)[[f"share_cluster_{c}" for c in range(N_CLUSTERS)]].sum(axis=1)
    assert (shares < 1).all()


def test_timestamps_are_read_in_utc():
    listens, tracks = make_listens(), make_tracks()
    local = listens.assign(ts=listens["ts"].dt.tz_convert("America/Sao_Paulo"))
    text = listens.assign(ts=local["ts"].map(lambda t: t.isoformat()))
    expected = computed(features_of(listens, tracks))
    pd.testing.assert_frame_equal(computed(features_of(local, tracks)), expected)
    pd.testing.assert_frame_equal(computed(features_of(text, tracks)), expected)


def test_without_artist_names_artist_entropy_is_missing():
    got = computed(features_of(make_listens(), make_tracks().drop(columns="artist_name")))
    assert got["artist_entropy"].isna().all()
    assert got["cluster_entropy"].notna().all()


# -- check_listens ----------------------------------------------------------------------------

PLANTED = {
    "unknown track_id": {"track_id": "t99"},
    "missing ts": {"ts": pd.NaT},
    "ts in the future": {"ts": NOW + pd.Timedelta(days=3)},
    "ts before 2000-01-01": {"ts": pd.Timestamp("1999-12-31 23:00", tz="UTC")},
    "missing user_id": {"user_id": None},
    "missing track_id": {"track_id": " "},
    "non-positive ms_played": {"ms_played": 0},
}


def planted_log() -> tuple[pd.DataFrame, dict[int, str]]:
    listens = make_listens(weight="ms_played").astype({"user_id": object, "track_id": object})
    listens["row"] = np.arange(len(listens))
    planted = {}
    for i, (reason, change) in enumerate(PLANTED.items()):
        at = 10 + 37 * i
        for column, value in change.items():
            listens.loc[at, column] = value
        planted[at] = reason
    # Missing user and unknown track: the earlier rule wins.
    listens.loc[5, ["user_id", "track_id"]] = [None, "t99"]
    planted[5] = "missing user_id"
    return listens, planted


@pytest.mark.parametrize("catalog_parts", [1, 3])
def test_check_listens_gives_each_planted_row_its_reason(catalog_parts):
    listens, planted = planted_log()
    tracks = dd.from_pandas(make_tracks(), npartitions=catalog_parts)
    checked = check_listens(dd.from_pandas(listens, npartitions=3), tracks["track_id"],
                            now=NOW).compute()
    assert len(checked) == len(listens)
    assert sorted(checked["row"]) == list(range(len(listens)))
    assert checked["_pos"].is_unique
    reasons = checked.set_index("row")["reason"]
    rejected = reasons.dropna().to_dict()
    assert rejected == planted
    by_row = checked.set_index("row")
    assert by_row.loc[10, "detail"] == "'t99'"
    assert by_row.loc[10 + 37 * 6, "detail"] == "0"


def test_check_listens_accepts_id_lists_with_repeats():
    listens, planted = planted_log()
    ids = list(make_tracks()["track_id"]) * 2 + [None]
    checked = check_listens(dd.from_pandas(listens, npartitions=2), ids, now=NOW).compute()
    assert len(checked) == len(listens)
    assert checked.set_index("row")["reason"].dropna().to_dict() == planted


def test_features_of_a_checked_log_skip_rejected_rows():
    listens, planted = planted_log()
    tracks = make_tracks()
    checked = check_listens(dd.from_pandas(listens, npartitions=3), tracks["track_id"], now=NOW)
    good = listens.drop(index=list(planted))
    result = user_features(checked, dd.from_pandas(tracks, npartitions=2), N_CLUSTERS, now=NOW)
    assert_matches(result, reference(good, tracks, now=NOW))


def test_check_listens_reads_text_timestamps_and_play_count():
    listens = pd.DataFrame({"user_id": ["a", "a", "b", "b"],
                            "track_id": ["t00", "t01", "t02", "t03"],
                            "ts": ["2024-06-01T10:00:00+02:00", "yesterday", "", "2024-06-02"],
                            "play_count": [2, -1, 1, 1]})
    checked = check_listens(dd.from_pandas(listens, npartitions=1), make_tracks(),
                            now=NOW).compute().sort_values("_pos")
    assert checked["reason"].tolist() == [pd.NA, "unparsable ts", "missing ts", pd.NA]
    assert checked["ts"].iloc[0] == pd.Timestamp("2024-06-01 08:00", tz="UTC")
    assert checked["detail"].iloc[1] == "'yesterday'"


def test_the_jobs_path_a_float32_lookup_shared_by_check_and_features():
    """Check and features resolve each listen once against one float32 lookup: the result is
    pandas' on the tracks' features rounded to float32."""
    from sonicatlas.io.checks import split
    from sonicatlas.listeners.lookup import track_lookup

    listens, planted = planted_log()
    tracks = make_tracks()
    lookup = track_lookup(dd.from_pandas(tracks, npartitions=2), FEATURES, np.float32)
    checked = check_listens(dd.from_pandas(listens, npartitions=3), lookup, now=NOW)
    assert checked.compute().set_index("row")["reason"].dropna().to_dict() == planted
    accepted, _ = split(checked)
    rounded = tracks.astype({name: np.float32 for name in FEATURES})
    result = user_features(accepted, lookup, N_CLUSTERS, now=NOW)
    assert_matches(result, reference(listens.drop(index=list(planted)), rounded, now=NOW))
    # the log is never joined: only the per-user partials are shuffled
    tasks = {str(key[0] if isinstance(key, tuple) else key)
             for key in result.__dask_graph__()}
    assert not any("merge" in t or "join" in t for t in tasks)
    assert any("shuffle" in t for t in tasks)


def test_check_listens_keeps_the_logs_partitions_and_describes_timestamps():
    listens, planted = planted_log()
    checked = check_listens(dd.from_pandas(listens, npartitions=3), make_tracks(), now=NOW)
    assert checked.npartitions == 3
    got = checked.compute()
    assert got["row"].tolist() == list(range(len(listens)))  # no shuffle: the log's order
    future = next(at for at, reason in planted.items() if reason == "ts in the future")
    assert got.loc[got["row"] == future, "detail"].item() == \
        (NOW + pd.Timedelta(days=3)).isoformat()


def test_coalesced_users_keep_every_row_and_merge_as_pandas_does():
    from sonicatlas.listeners.segments import coalesce_users

    rng = np.random.default_rng(5)
    users = pd.DataFrame({"user_id": [f"u{i:03d}" for i in range(230)],
                          "plays": rng.random(230)})
    attributes = pd.DataFrame({"user_id": users["user_id"].sample(frac=1, random_state=0),
                               "country": rng.choice(["DE", "BR", "JP"], 230)})
    many = dd.from_pandas(users, npartitions=23)
    coalesced, attrs = coalesce_users(many, len(users), dd.from_pandas(attributes,
                                                                       npartitions=40),
                                      per_partition=100)
    assert coalesced.npartitions == 3  # ceil(230 / 100), joined from 23
    assert attrs.npartitions <= coalesced.npartitions
    merged = coalesced.merge(attrs, on="user_id", how="left").compute()
    expected = users.merge(attributes, on="user_id", how="left")
    pd.testing.assert_frame_equal(merged.sort_values("user_id").reset_index(drop=True),
                                  expected.sort_values("user_id").reset_index(drop=True),
                                  check_dtype=False)  # dask holds text as Arrow strings
    # a matrix already in few partitions, and a small users table, are left as they are
    few, small = coalesce_users(dd.from_pandas(users, npartitions=2), len(users),
                                dd.from_pandas(attributes, npartitions=1), per_partition=100)
    assert (few.npartitions, small.npartitions) == (2, 1)


@pytest.mark.parametrize("table_limit", [1 << 26, 10])  # a presence table, then a sort
def test_distinct_days_per_user_equal_pandas_nunique(table_limit):
    from sonicatlas.listeners.users import _distinct_per_user

    rng = np.random.default_rng(7)
    codes = rng.integers(0, 40, 5_000)
    days = rng.integers(19_000, 19_400, 5_000)
    got = _distinct_per_user(codes, 45, days, table_limit=table_limit)  # users 40-44: none
    expected = pd.Series(days).groupby(codes).nunique().reindex(range(45), fill_value=0)
    np.testing.assert_array_equal(got, expected.to_numpy(dtype=float))
