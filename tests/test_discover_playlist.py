"""Playlist rules and artist profiles over a run, against pandas and numpy references."""

import json

import numpy as np
import pandas as pd
import pytest
from distributed import Client, LocalCluster

from conftest import blob_tracks, run_job, write_catalog
from sonicatlas.contract import FEATURES
from sonicatlas.discover.artists import artist_means, artist_profile, similar_artists
from sonicatlas.discover.playlist import make_playlist, mean_step
from sonicatlas.errors import InputError

pytestmark = pytest.mark.slow  # a cluster-tracks run


@pytest.fixture(scope="module")
def client():
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address="127.0.0.1:0") as cluster, Client(cluster) as c:
        yield c


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("playlist")
    catalog = write_catalog(blob_tracks(4_000, seed=5), root / "catalog", parts=4)
    run_job(root / "run", f"input={catalog}", "k=4")
    return root / "run"


@pytest.fixture(scope="module")
def tracks(run):
    """Every track: id, cluster, artist and standardised features, read by pandas."""
    query = pd.read_parquet(run / "query")
    query[list(FEATURES)] = query[list(FEATURES)].astype(np.float64)  # float64 references
    meta = pd.read_parquet(run / "assignments", columns=["track_id", "cluster", "artist_name"])
    return query.merge(meta, on="track_id")


def cosine_to(tracks, target):
    X = tracks[list(FEATURES)].to_numpy(np.float64)
    return X @ target / (np.linalg.norm(X, axis=1) * np.linalg.norm(target))


def reference_playlist(tracks, target, size, threshold, cap, cluster=None, exclude=()):
    """Greedy by hand: best first (ties by id), skip capped artists, stop at size."""
    frame = tracks.assign(similarity=cosine_to(tracks, target))
    frame = frame[(frame["similarity"] >= threshold) & ~frame["track_id"].isin(exclude)]
    if cluster is not None:
        frame = frame[frame["cluster"] == cluster]
    frame = frame.sort_values(["similarity", "track_id"], ascending=[False, True])
    chosen, seen = [], {}
    for track, artist in zip(frame["track_id"], frame["artist_name"], strict=True):
        if seen.get(artist, 0) < cap:
            seen[artist] = seen.get(artist, 0) + 1
            chosen.append(track)
        if len(chosen) == size:
            break
    return chosen, len(frame)


def centre(run, cluster):
    model = json.loads((run / "model/model.json").read_text())
    return np.asarray(model["centers"][cluster], dtype=np.float64)


@pytest.mark.parametrize("size,threshold,cap", [(30, 0.8, 2), (200, 0.3, 1), (5, -1.0, 3)])
def test_cluster_playlist_follows_every_rule(run, tracks, client, size, threshold, cap):
    result = make_playlist(str(run), cluster=2, size=size, min_similarity=threshold,
                           max_per_artist=cap)
    table = result.tracks
    expected, qualified = reference_playlist(tracks, centre(run, 2), size, threshold, cap, 2)
    assert table["track_id"].tolist() == expected
    assert result.qualified == qualified
    assert len(table) <= size and (table["similarity"] >= threshold).all()
    assert (table["cluster"] == 2).all()
    assert table["artist_name"].value_counts().max() <= cap
    order = table.sort_values(["similarity", "track_id"], ascending=[False, True])
    assert order["track_id"].tolist() == table["track_id"].tolist()


def test_fewer_qualifying_than_size_is_not_an_error(run, tracks, client):
    result = make_playlist(str(run), cluster="1", size=500, min_similarity=0.97)
    expected, qualified = reference_playlist(tracks, centre(run, 1), 500, 0.97, 2, 1)
    assert len(result.tracks) == len(expected) < 500
    assert result.qualified == qualified


def test_seed_playlist_is_nearest_the_seeds_mean_without_the_seeds(run, tracks, client):
    seeds = tuple(tracks["track_id"].iloc[[3, 1_500]])
    X = tracks.set_index("track_id").loc[list(seeds), list(FEATURES)].to_numpy(np.float64)
    result = make_playlist(str(run), seeds=seeds, size=25, min_similarity=0.5)
    expected, _ = reference_playlist(tracks, X.mean(axis=0), 25, 0.5, 2, exclude=seeds)
    assert result.tracks["track_id"].tolist() == expected


def test_flow_orders_the_same_tracks_with_no_longer_mean_step(run, tracks, client):
    by_similarity = make_playlist(str(run), cluster=0, size=40, min_similarity=0.5)
    flow = make_playlist(str(run), cluster=0, size=40, min_similarity=0.5, order="flow")
    assert sorted(flow.tracks["track_id"]) == sorted(by_similarity.tracks["track_id"])
    assert flow.tracks["track_id"].iloc[0] == by_similarity.tracks["track_id"].iloc[0]
    X = tracks.set_index("track_id")[list(FEATURES)].astype(np.float64)
    assert mean_step(X.loc[flow.tracks["track_id"]].to_numpy()) == pytest.approx(
        flow.mean_step)
    assert flow.mean_step <= mean_step(X.loc[by_similarity.tracks["track_id"]].to_numpy())
    steps = np.linalg.norm(np.diff(X.loc[flow.tracks["track_id"]].to_numpy(), axis=0), axis=1)
    np.testing.assert_allclose(flow.tracks["step"].iloc[1:], steps, rtol=1e-9)


@pytest.mark.parametrize("kwargs,message", [
    ({"cluster": "no such", "size": 5}, "unknown cluster 'no such'.*0 "),
    ({"cluster": 0, "size": 0}, "--size"),
    ({"cluster": 0, "size": 501}, "--size"),
    ({"cluster": 0, "min_similarity": 1.01}, "--min-similarity"),
    ({"cluster": 0, "min_similarity": -1.5}, "--min-similarity"),
    ({"seeds": ("nope",)}, "unknown seed track id 'nope'"),
])
def test_bad_playlist_requests_are_errors(run, client, kwargs, message):
    with pytest.raises(InputError, match=message):
        make_playlist(str(run), **kwargs)


def test_artist_means_equal_a_pandas_groupby(run, tracks, client):
    expected = tracks.groupby("artist_name")[list(FEATURES)].mean().sort_index()
    counts = tracks.groupby("artist_name").size().sort_index()
    got = artist_means(str(run))
    assert got.index.tolist() == expected.index.tolist()
    assert got["tracks"].tolist() == counts.tolist()
    np.testing.assert_allclose(got[list(FEATURES)].to_numpy(), expected.to_numpy(),
                               rtol=1e-9, atol=1e-9)


def test_artist_profile_and_similar_artists_against_brute_force(run, tracks, client):
    counts = tracks["artist_name"].value_counts()
    artist = counts.index[0]
    profile = artist_profile(str(run), artist.upper())
    mine = tracks[tracks["artist_name"] == artist]
    assert profile.artist == artist and profile.tracks == len(mine)
    shares = mine["cluster"].value_counts(normalize=True)
    assert dict(zip(profile.clusters["cluster"], profile.clusters["share"], strict=True)) == \
        pytest.approx(shares.to_dict())
    z = mine[list(FEATURES)].to_numpy(np.float64).mean(axis=0)
    np.testing.assert_allclose(profile.profile["z"], z, rtol=1e-6, atol=1e-9)
    # typical: nearest the artist's mean profile
    d = np.linalg.norm(mine[list(FEATURES)].to_numpy(np.float64) - z, axis=1)
    nearest = mine.assign(d=d).sort_values(["d", "track_id"])["track_id"].head(5).tolist()
    assert profile.typical["track_id"].tolist() == nearest
    # similar artists: cosine between mean profiles, artists with >= 3 tracks, by hand
    means = tracks.groupby("artist_name")[list(FEATURES)].mean()
    pool = means[(counts.reindex(means.index) >= 3) & (means.index != artist)]
    cos = pool.to_numpy() @ means.loc[artist].to_numpy() / (
        np.linalg.norm(pool.to_numpy(), axis=1) * np.linalg.norm(means.loc[artist].to_numpy()))
    expected = pd.DataFrame({"a": pool.index, "c": cos}).sort_values(
        ["c", "a"], ascending=[False, True])["a"].head(10).tolist()
    assert profile.similar_artists["artist_name"].tolist() == expected
    again = similar_artists(artist_means(str(run)), artist, n=10)
    assert again["artist_name"].tolist() == expected
