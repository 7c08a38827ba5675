"""Tables of a real-looking catalog: genre lists, missing genres, albums, repeated tracks."""

from __future__ import annotations

import dask
import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

from conftest import blob_tracks
from sonicatlas.contract import DETAIL, FEATURES, POSITION, REASON
from sonicatlas.io.checks import check_rows, split
from sonicatlas.io.duplicates import ID_HASH, merge_repeats
from sonicatlas.io.genres import split_genres
from sonicatlas.summaries.mixes import album_popularity, category_reduction
from sonicatlas.summaries.scan import scan
from sonicatlas.summaries.tables import genre_agreement


@pytest.mark.parametrize("cell, genres", [
    ("pop", ["pop"]), ("hip hop, pop", ["hip hop", "pop"]), ("rock|indie", ["rock", "indie"]),
    ("['dance pop', 'pop']", ["dance pop", "pop"]), ("{'k-pop'}", ["k-pop"]),
    ("set()", []), ("[]", []), ("", []), ("  ", []), (None, []), (np.nan, []),
    ("pop, pop", ["pop"])])
def test_genre_cells_split_into_lists_and_empty_markers_are_missing(cell, genres):
    assert split_genres(cell) == genres


def _genre_mix(frame, k):
    with dask.config.set(scheduler="sync"):
        return scan(dd.from_pandas(frame, npartitions=3),
                    {"mix": category_reduction("genre", k, split=split_genres)})["mix"]


def test_genre_lists_count_one_over_n_and_missing_genres_are_apart():
    frame = pd.DataFrame({
        "cluster": np.array([0, 0, 0, 0, 1, 1, 1, 1, 1], dtype=np.int32),
        "genre": pd.array(["pop", "hip hop, pop", "set()", None, "rock", "rock|pop", "[]",
                           "", "rock"], dtype="string")})
    mix = _genre_mix(frame, 2).set_index(["cluster", "genre"])
    # by hand: cluster 0 has pop 1 + 1/2, hip hop 1/2 over 2 tracks with a genre, 2 without;
    # cluster 1 rock 1 + 1/2 + 1, pop 1/2 over 3 tracks with a genre, 2 without
    assert mix.loc[(0, "pop"), "tracks"] == 1.5 and mix.loc[(0, "hip hop"), "tracks"] == 0.5
    assert mix.loc[(0, "pop"), "share"] == 0.75
    assert mix.loc[(1, "rock"), "tracks"] == 2.5 and mix.loc[(1, "pop"), "share"] == 0.5 / 3
    assert set(mix.index.get_level_values("genre")) == {"pop", "hip hop", "rock"}
    assert mix.loc[(0, "pop"), "missing_tracks"] == 2
    assert mix.loc[(0, "pop"), "missing_share"] == 0.5
    assert mix.loc[(1, "rock"), "missing_share"] == 0.4
    np.testing.assert_allclose(mix["share"].groupby(level="cluster").sum(), 1.0)


def test_genre_agreement_uses_the_tracks_with_a_genre_and_says_how_many():
    rng = np.random.default_rng(3)
    n = 3_000
    clusters = rng.integers(0, 4, n)
    genres = np.where(rng.random(n) < 0.6, clusters, rng.integers(0, 4, n)).astype(object)
    genres = np.array([f"g{g}" for g in genres], dtype=object)
    genres[rng.random(n) < 0.56] = None  # most genres missing, as in real exports
    frame = pd.DataFrame({"cluster": clusters.astype(np.int32),
                          "genre": pd.array(genres, dtype="string")})
    table = genre_agreement(_genre_mix(frame, 4)).iloc[0]
    known = pd.notna(genres)
    assert table["adjusted_rand"] == pytest.approx(
        adjusted_rand_score(genres[known].astype(str), clusters[known]), rel=1e-9)
    assert table["normalized_mutual_info"] == pytest.approx(
        normalized_mutual_info_score(genres[known].astype(str), clusters[known]), rel=1e-9)
    assert table["tracks_with_genre"] == known.sum()
    assert table["coverage"] == pytest.approx(known.mean())


def test_album_popularity_keeps_same_named_albums_of_different_artists_apart():
    frame = pd.DataFrame({
        "artist_name": ["Tom Petty"] * 3 + ["Scarface"] * 3 + ["Little Texas"] * 3,
        "album_name": ["Greatest Hits"] * 9,
        "popularity": [90, 80, 75, 10, 20, 30, 70, 10, 10]})
    table = album_popularity(dd.from_pandas(frame, npartitions=2))
    expected = frame.assign(popular=frame["popularity"] >= 70).groupby(
        ["artist_name", "album_name"]).agg(tracks=("popular", "size"), share=("popular", "mean"))
    got = table.set_index(["artist_name", "album_name"]).sort_index()
    assert len(got) == 3
    np.testing.assert_allclose(got["popular_density"], expected["share"].sort_index())
    np.testing.assert_array_equal(got["tracks"], expected["tracks"].sort_index())
    # with an album id, the id is the album, whatever the names say
    frame["album_id"] = ["a1"] * 3 + ["a2"] * 3 + ["a1"] * 3
    table = album_popularity(dd.from_pandas(frame, npartitions=2)).set_index("album_id")
    assert table.loc["a1", "tracks"] == 6 and table.loc["a2", "tracks"] == 3
    assert table.loc["a1", "popular_density"] == pytest.approx(4 / 6)


def test_a_track_in_several_playlists_is_one_track_with_all_its_genres():
    frame = blob_tracks(12, seed=4)
    frame["genre"] = pd.array(["pop"] * 12, dtype="string")
    frame.loc[5] = frame.loc[1]                       # same track, listed again under rock
    frame.loc[5, "genre"] = "rock"
    frame.loc[9] = frame.loc[1]                       # and under r&b, hip hop
    frame.loc[9, "genre"] = "r&b, hip hop"
    frame.loc[7] = frame.loc[2]                       # same id, different features
    frame.loc[7, "energy"] = 0.123456789
    frame.loc[7, "tempo"] = 131.0
    frame.loc[11] = frame.loc[3]                      # an exact repeat with the same genre
    checked = check_rows(dd.from_pandas(frame, npartitions=3), FEATURES)
    accepted, rejects = dask.persist(*split(checked, FEATURES))
    accepted, rejects, merged = merge_repeats(accepted, rejects, FEATURES, as_read=checked)
    assert merged == 3
    accepted, rejects = accepted.compute(), rejects.compute()

    expected_ids = frame["track_id"].drop_duplicates()
    assert sorted(accepted["track_id"]) == sorted(expected_ids)
    assert accepted.set_index("track_id").loc[frame.loc[1, "track_id"], "genre"] == (
        "pop|rock|r&b|hip hop")
    assert accepted.set_index("track_id").loc[frame.loc[3, "track_id"], "genre"] == "pop"
    assert list(rejects[REASON]) == ["duplicate track_id"]
    detail = rejects[DETAIL].iloc[0]
    assert f"energy 0.123456789, kept row has {frame.loc[2, 'energy']}" in detail
    assert f"tempo 131.0, kept row has {frame.loc[2, 'tempo']}" in detail
    assert "danceability" not in detail
    assert len(accepted) + len(rejects) == len(frame) - 3  # three listings merged, none lost
    assert rejects[POSITION].is_monotonic_increasing


def repeated_listings() -> pd.DataFrame:
    """Merged repeats (two in one partition, one across), a conflicting repeat, a reject."""
    frame = blob_tracks(30, seed=6)
    frame["genre"] = pd.array([f"g{i % 4}" for i in range(30)], dtype="string")
    frame.loc[5] = frame.loc[1]
    frame.loc[5, "genre"] = "rock"
    frame.loc[25] = frame.loc[1]
    frame.loc[25, "genre"] = "jazz"
    frame.loc[17] = frame.loc[2]
    frame.loc[17, "tempo"] = 99.5                    # same id, other tempo: rejected
    frame.loc[12, "energy"] = np.nan                  # rejected before the repeats
    return frame


def test_rows_holding_id_hashes_resolve_repeats_as_rows_holding_ids():
    frame = repeated_listings()
    ids = dd.from_pandas(frame[["track_id"]], npartitions=3)  # the ids read again
    results = {}
    for hashed in (False, True):
        checked = check_rows(dd.from_pandas(frame, npartitions=3), FEATURES)
        accepted, rejects = dask.persist(*split(checked, FEATURES, hashed=hashed))
        accepted, rejects, merged = merge_repeats(accepted, rejects, FEATURES,
                                                  as_read=checked, ids=ids if hashed else None)
        assert merged == 2
        results[hashed] = accepted.compute(), rejects.compute()
    (held, held_rejects), (lean, lean_rejects) = results[False], results[True]
    assert "track_id" not in lean and ID_HASH not in lean  # no id held after
    pd.testing.assert_frame_equal(lean, held.drop(columns=["track_id"]))
    pd.testing.assert_frame_equal(lean_rejects, held_rejects)
    # against pandas: the conflicting repeat keeps its own id, the merged one its genres
    moved = lean_rejects[lean_rejects[REASON] == "duplicate track_id"]
    assert moved["track_id"].tolist() == [frame.loc[17, "track_id"]]
    kept = lean.set_index(POSITION)
    assert kept.loc[1, "genre"] == "g1|rock|jazz"
    # three partitions of ten rows: row i is at position (i // 10) << 32 | i % 10
    assert sorted(kept.index) == [((i // 10) << 32) + i % 10
                                  for i in sorted({*range(30)} - {5, 12, 17, 25})]


def test_a_hash_collision_between_held_hashes_merges_nothing():
    frame = repeated_listings().drop(index=[5]).iloc[:10].reset_index(drop=True)  # no repeats
    checked = check_rows(dd.from_pandas(frame, npartitions=2), FEATURES)
    accepted, rejects = dask.persist(*split(checked, FEATURES, hashed=True))
    # rows 3 and 8 (two partitions, two ids) given the same hash, as a collision would
    collided = accepted.map_partitions(
        lambda part: part.assign(**{ID_HASH: np.where(part[POSITION].isin([3, (1 << 32) + 3]),
                                                      np.uint64(42), part[ID_HASH])}))
    ids = dd.from_pandas(frame[["track_id"]], npartitions=2)
    kept, rejects, merged = merge_repeats(collided.persist(), rejects, FEATURES,
                                          as_read=checked, ids=ids)
    assert merged == 0 and len(rejects.compute()) == 0
    assert len(kept.compute()) == 10


def test_repeats_that_all_agree_reject_nothing():
    frame = blob_tracks(6, seed=2)
    frame["genre"] = pd.array(["pop", "rock", "pop", "jazz", "pop", "pop"], dtype="string")
    frame.loc[6] = frame.loc[0]
    frame.loc[6, "genre"] = "latin"
    checked = check_rows(dd.from_pandas(frame, npartitions=2), FEATURES)
    accepted, rejects = dask.persist(*split(checked, FEATURES))
    accepted, rejects, merged = merge_repeats(accepted, rejects, FEATURES, as_read=checked)
    assert merged == 1 and len(rejects.compute()) == 0
    assert accepted.compute().set_index("track_id").loc[frame.loc[0, "track_id"], "genre"] == (
        "pop|latin")
