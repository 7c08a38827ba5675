"""The explorer's discovery over a run held in memory, against pandas and numpy by hand."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from conftest import blob_tracks, run_job, write_catalog
from sonicatlas.app.data import read_run
from sonicatlas.app.discovery import Discovery

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("discovery")
    catalog = write_catalog(blob_tracks(2_000, groups=3, seed=5), root / "catalog")
    run_job(root / "run", f"input={catalog}", "k=3")
    return root / "run"


@pytest.fixture(scope="module")
def discovery(run):
    return Discovery(read_run(str(run)))


@pytest.fixture(scope="module")
def truth(run):
    """Each assigned track's z-scores, from the files, with pandas."""
    model = json.loads((run / "model" / "model.json").read_text())
    tracks = pd.read_parquet(run / "assignments").merge(
        pd.read_parquet(run / "query"), on="track_id", suffixes=("", "_z"))
    z = np.column_stack([tracks[f"{f}_z" if f"{f}_z" in tracks else f].to_numpy(np.float64)
                         for f in model["features"]])
    return tracks, z, model


def test_artist_means_equal_a_pandas_groupby(discovery, truth):
    tracks, z, model = truth
    frame = pd.DataFrame(z, columns=model["features"]).assign(artist=tracks["artist_name"])
    expected = frame.groupby("artist").mean().sort_index()
    got = discovery.artist_means
    assert list(got.index) == list(expected.index)
    assert np.allclose(got[model["features"]].to_numpy(), expected.to_numpy(), atol=1e-12)
    assert (got["tracks"] == frame.groupby("artist").size().sort_index()).all()


def test_an_artists_profile_and_peers_by_hand(discovery, truth):
    tracks, z, model = truth
    name = tracks["artist_name"].value_counts().index[0]
    profile = discovery.artist(name)
    rows = tracks["artist_name"].to_numpy() == name
    assert profile.tracks == rows.sum()
    assert np.allclose(profile.profile["z"], z[rows].mean(axis=0))
    shares = tracks.loc[rows, "cluster"].value_counts(normalize=True)
    assert dict(zip(profile.clusters["cluster"], profile.clusters["share"], strict=True)) == \
        pytest.approx(shares.to_dict())
    means = pd.DataFrame(z).groupby(tracks["artist_name"].to_numpy()).mean()
    sizes = tracks["artist_name"].value_counts()
    pool = means.loc[(sizes.reindex(means.index) >= 3) & (means.index != name)]
    me = means.loc[name].to_numpy()
    cosine = pool.to_numpy() @ me / (np.linalg.norm(pool.to_numpy(), axis=1)
                                     * np.linalg.norm(me))
    best = pool.index.to_numpy()[np.lexsort((pool.index.to_numpy(), -cosine))][:10]
    assert profile.similar_artists["artist_name"].tolist() == best.tolist()


def test_a_seed_playlist_follows_the_rules_by_hand(discovery, truth):
    tracks, z, _ = truth
    seeds = tuple(tracks["track_id"].iloc[[3, 40]])
    made = discovery.playlist(seeds=seeds, size=25, min_similarity=0.5, max_per_artist=1)
    target = z[[3, 40]].mean(axis=0)
    cosine = z @ target / (np.linalg.norm(z, axis=1) * np.linalg.norm(target))
    ok = (cosine >= 0.5) & ~tracks["track_id"].isin(seeds).to_numpy()
    order = np.flatnonzero(ok)[np.lexsort((tracks["track_id"].to_numpy()[ok], -cosine[ok]))]
    expected, seen = [], set()
    for i in order:
        if tracks["artist_name"].iat[i] not in seen and len(expected) < 25:
            seen.add(tracks["artist_name"].iat[i])
            expected.append(tracks["track_id"].iat[i])
    assert made.tracks["track_id"].tolist() == expected
    assert made.qualified == ok.sum()


def test_search_ranks_as_a_full_sort_does(discovery, truth):
    tracks, _, _ = truth
    got = discovery.search("Song 1", where="name", n=15)
    names = tracks["track_name"].str.lower()
    hit = names.str.contains("song 1", regex=False)
    tier = np.where(names == "song 1", 0, np.where(names.str.startswith("song 1"), 1, 2))
    frame = tracks.assign(tier=tier)[hit.to_numpy()]
    frame = frame.assign(pop=-frame["popularity"].astype(float))
    expected = frame.sort_values(["tier", "pop", "track_name", "track_id"])["track_id"]
    assert got["track_id"].tolist() == expected.head(15).tolist()
