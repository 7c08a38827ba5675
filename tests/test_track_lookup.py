"""The track lookup every worker holds, against pandas' own index of the same ids."""

from __future__ import annotations

import dask
import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest

from sonicatlas.listeners.lookup import id_hashes, track_lookup


def catalog(n: int = 5_000, seed: int = 0) -> pd.DataFrame:
    """Ids of varied length and alphabet; ``cluster`` is the row number, to find rows by."""
    rng = np.random.default_rng(seed)
    ids = [f"{'é' * (i % 3)}trk-{v:x}" for i, v in enumerate(rng.permutation(10 * n)[:n])]
    return pd.DataFrame({"track_id": pd.array(ids, dtype="string"),
                         "cluster": np.arange(n), "energy": rng.random(n),
                         "artist_name": [f"artist {v}" if v else None
                                         for v in rng.integers(0, 300, n)]})


def made(tracks, **kwargs):
    with dask.config.set(scheduler="sync"):
        return track_lookup(tracks, **kwargs).data.compute()


@pytest.mark.parametrize("parts", [1, 4])
def test_finds_every_catalog_id_and_no_other(parts):
    tracks = catalog()
    lookup = made(dd.from_pandas(tracks, npartitions=parts), feature_names=("energy",))
    rng = np.random.default_rng(1)
    wanted = pd.Series(list(rng.choice(tracks["track_id"], 2_000)) +
                       ["trk-unknown", "", None, "TRK-1"] * 5, dtype="string")
    rows = lookup.find(wanted)
    expected = pd.Index(tracks["track_id"]).get_indexer(wanted)  # -1 where absent or missing
    assert ((rows >= 0) == (expected >= 0)).all()
    found = rows >= 0
    np.testing.assert_array_equal(lookup.cluster[rows[found]], expected[found])
    np.testing.assert_array_equal(lookup.features[rows[found], 0],
                                  tracks["energy"].to_numpy()[expected[found]])


def test_features_keep_their_precision_unless_float32_is_asked():
    tracks = catalog(100)
    assert made(tracks, feature_names=("energy",)).features.dtype == np.float64
    lookup = made(tracks, feature_names=("energy",), dtype=np.float32)
    assert lookup.features.dtype == np.float32
    rows = lookup.find(tracks["track_id"])
    np.testing.assert_array_equal(lookup.features[rows, 0],
                                  tracks["energy"].to_numpy().astype(np.float32))


def test_artist_codes_are_one_per_name_across_partitions():
    tracks = catalog()
    lookup = made(dd.from_pandas(tracks, npartitions=5), feature_names=("energy",))
    codes = lookup.artist[lookup.find(tracks["track_id"])]
    names = tracks["artist_name"]
    assert (codes[names.isna().to_numpy()] == -1).all()
    named = names.notna().to_numpy()
    # same name <=> same code: the pairs of (name, code) are as many as the names
    pairs = pd.DataFrame({"name": names[named].to_numpy(), "code": codes[named]})
    assert len(pairs.drop_duplicates()) == names.nunique() == pairs["code"].nunique()


def test_hashes_are_fnv1a_of_the_utf8_bytes():
    def fnv(text: str, basis: int, prime: int, bits: int) -> int:
        h = basis
        for byte in text.encode():
            h = ((h ^ byte) * prime) % 2**bits
        return h

    ids = ["", "a", "trk-1f", "é€"]
    wide, narrow, valid = id_hashes(pd.Series(ids + [None], dtype="string"))
    assert list(valid) == [True] * 4 + [False]
    assert list(wide[:4]) == [fnv(t, 14695981039346656037, 1099511628211, 64) for t in ids]
    assert list(narrow[:4]) == [fnv(t, 2166136261, 16777619, 32) for t in ids]


def test_an_empty_catalog_finds_nothing():
    lookup = made(pd.DataFrame({"track_id": pd.array([], dtype="string")}))
    assert (lookup.find(pd.Series(["a", None], dtype="string")) == -1).all()


def test_a_runs_lookup_holds_the_tracks_of_both_catalog_and_assignments():
    """Joined on the id hashes as it is assembled: the tracks of a pandas inner merge."""
    from sonicatlas.listeners.lookup import run_lookup

    tracks = catalog(3_000)
    features = tracks[["track_id", "energy"]]
    assigned = tracks.drop(columns="energy").sample(frac=0.7, random_state=2)  # some rejected
    with dask.config.set(scheduler="sync"):
        lookup = run_lookup(dd.from_pandas(features, npartitions=3),
                            dd.from_pandas(assigned, npartitions=2), ("energy",),
                            np.float64).data.compute()
    merged = assigned.merge(features, on="track_id")
    rows = lookup.find(tracks["track_id"])
    assert ((rows >= 0) == tracks["track_id"].isin(assigned["track_id"]).to_numpy()).all()
    found = lookup.find(merged["track_id"])
    np.testing.assert_array_equal(lookup.cluster[found], merged["cluster"])
    np.testing.assert_array_equal(lookup.features[found, 0], merged["energy"])
    pairs = pd.DataFrame({"n": merged["artist_name"], "c": lookup.artist[found]}).dropna()
    assert len(pairs.drop_duplicates()) == merged["artist_name"].nunique() == \
        pairs["c"].nunique()  # one code per name
    codes = lookup.artist[found]
    assert (codes[merged["artist_name"].isna().to_numpy()] == -1).all()
