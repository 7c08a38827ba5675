"""How metadata spreads over clusters: genre and decade mix, artists, albums.

Mixes by genre or decade are small (clusters x categories) and computed exactly. Artist and
album tables have one row per artist or album, which at catalog scale is millions of rows:
they stay distributed and are written by the workers.
"""

from __future__ import annotations

from functools import partial

import dask.dataframe as dd
import numba
import numpy as np
import pandas as pd

from sonicatlas.contract import ALBUM, ALBUM_ID, ARTIST, CLUSTER
from sonicatlas.io.duplicates import hash_ids
from sonicatlas.summaries.scan import Reduction, Regroup, concat, scan

POPULAR = 70  # popularity (0..100) from which a track counts as popular


def category_reduction(column: str, k: int, *, label=None, name: str | None = None,
                       split=None) -> Reduction:
    """Tracks per (cluster, category) with the category's share of its cluster, as a
    :class:`~sonicatlas.summaries.scan.Reduction` over tracks with ``cluster`` and ``column``.

    Each partition counts its (cluster, value) pairs on integer codes (``pd.factorize``, not
    a groupby on the strings themselves); only those small counts reach the client.

    Parameters
    ----------
    column : str
        A low-cardinality column: ``genre``, ``release_year``.
    k : int
        Number of clusters.
    label : callable, optional
        Maps an array of distinct values to their category labels (e.g. :func:`decade`);
        default the values as text.
    name : str, optional
        Name of the category column in the result; default ``column``.
    split : callable, optional
        Maps one value to its list of categories (e.g.
        :func:`~sonicatlas.io.genres.split_genres`); a track with ``n`` of them counts ``1/n``
        towards each, and one with none is missing. Default: each value is one category.

    Returns
    -------
    Reduction
        Finishes as a pandas.DataFrame with columns cluster, <name>, tracks, share,
        missing_tracks, missing_share; sorted by cluster and descending share. ``share`` is
        among the cluster's tracks that have a category; the tracks without one are counted
        apart (``missing_tracks``, and ``missing_share`` of all the cluster's tracks).
    """
    return Reduction(partial=lambda part, _: _pair_counts(part, column, split), combine=concat,
                     finish=lambda pairs: _mix(pairs, k, label, name or column))


def _mix(pairs: pd.DataFrame, k: int, label, name: str) -> pd.DataFrame:
    pairs = pairs[pairs[CLUSTER].between(0, k - 1)]
    values = pairs["value"].to_numpy(dtype=object)
    known = pd.notna(values)
    labels = np.full(len(values), None, dtype=object)
    if known.any():
        labels[known] = np.asarray(label(values[known]) if label else values[known].astype(str),
                                   dtype=object)
    pairs = pairs.assign(**{name: pd.array(labels, dtype="string")})
    missing = pairs[pairs[name].isna()].groupby(CLUSTER)["tracks"].sum()
    counts = pairs.dropna(subset=[name]).groupby([CLUSTER, name])["tracks"].sum().reset_index()
    totals = counts.groupby(CLUSTER)["tracks"].transform("sum")
    counts["share"] = counts["tracks"] / totals
    counts["missing_tracks"] = counts[CLUSTER].map(missing).fillna(0).astype(np.int64)
    counts["missing_share"] = counts["missing_tracks"] / (totals + counts["missing_tracks"])
    if np.array_equal(counts["tracks"], counts["tracks"].round()):  # no list: whole tracks
        counts["tracks"] = counts["tracks"].astype(np.int64)
    return counts.sort_values([CLUSTER, "share", name], ascending=[True, False, True],
                              ignore_index=True)


def _pair_counts(frame: pd.DataFrame, column: str, split=None) -> pd.DataFrame:
    codes, uniques = pd.factorize(frame[column], use_na_sentinel=True)  # missing -> -1
    clusters = frame[CLUSTER].to_numpy(dtype=np.int64)
    low = int(clusters.min()) if len(clusters) else 0  # noise labels (-1) are clusters too
    # one bincount over (cluster, code) pairs, code + 1 so that "missing" has a slot: one
    # pass over two integer arrays, where value_counts would hash both columns
    width = len(uniques) + 1
    counts = np.bincount((clusters - low) * width + codes + 1)
    pair = np.flatnonzero(counts)
    code, tracks = pair % width - 1, counts[pair]
    # each distinct value's categories, once per value, not per track; [] is missing
    lists = [[] for _ in range(width)]  # slot 0: the missing values
    for i, value in enumerate(np.asarray(uniques, dtype=object)):
        lists[i + 1] = list(split(value)) if split else [value]
    sizes = np.array([max(len(items), 1) for items in lists])
    flat = np.array([item for items in lists for item in (items or [None])], dtype=object)
    starts = np.r_[0, np.cumsum(sizes)[:-1]]
    repeat = sizes[code + 1]
    within = np.arange(repeat.sum()) - np.repeat(np.cumsum(repeat) - repeat, repeat)
    return pd.DataFrame({
        CLUSTER: np.repeat((pair // width + low).astype(np.int32), repeat),
        "value": flat[np.repeat(starts[code + 1], repeat) + within],
        "tracks": np.repeat(tracks / sizes[code + 1], repeat)})


def decade(years: np.ndarray) -> np.ndarray:
    """"1990s" for 1990..1999; ``None`` where the year is not a number."""
    numbers = pd.to_numeric(pd.Series(years), errors="coerce")
    text = ((numbers // 10) * 10).astype("Int64").astype("string") + "s"
    return text.astype(object).where(text.notna(), None).to_numpy()


def artist_clusters(scored: dd.DataFrame, features: tuple[str, ...], k: int,
                    artist: str = "artist_name", buckets: int | None = None) -> dd.DataFrame:
    """Table, one row per artist: tracks, share of tracks per cluster, mean features, and
    the dominant cluster; persisted on the workers, one partition per hash bucket."""
    return scan(scored, {"artists": artist_regroup(scored, features, k, artist, buckets)}
                )["artists"]


def artist_regroup(scored: dd.DataFrame, features: tuple[str, ...], k: int,
                   artist: str = "artist_name", buckets: int | None = None) -> Regroup:
    """:func:`artist_clusters` as a :class:`~sonicatlas.summaries.scan.Regroup`, for one shared
    pass.

    Each partition counts tracks per (artist, cluster) and sums the features per artist on
    factorized codes; only those per-artist rows are regrouped by a hash of the name, not
    every track as a groupby on the name strings and its shuffle would move.
    Tracks without an artist are left out, as a groupby leaves out a missing key.
    """
    features = tuple(features)
    meta = pd.DataFrame({
        artist: pd.Series(dtype=scored[artist].dtype),
        **{f"share_cluster_{c}": pd.Series(dtype=np.float64) for c in range(k)},
        **{f: pd.Series(dtype=np.float64) for f in features},
        "tracks": pd.Series(dtype=np.int64),
        "dominant_cluster": pd.Series(dtype=np.int32)})
    return Regroup(partial=partial(_artist_sums, features=features, k=k, artist=artist),
                   combine=partial(_artist_rows, features=features, k=k, artist=artist,
                                   meta=meta),
                   meta=meta, buckets=buckets or max(1, scored.npartitions // 4))


def _artist_sums(frame: pd.DataFrame, number: int, buckets: int, *, features, k, artist
                 ) -> list[pd.DataFrame]:
    codes, names = pd.factorize(frame[artist], use_na_sentinel=True)
    n = len(names)
    values = frame[list(features)].to_numpy()  # float32 for the scored tracks
    if values.dtype.kind != "f":
        values = values.astype(np.float64)
    counts, totals = np.zeros((n, k + 1), dtype=np.int64), np.zeros((n, len(features)))
    _sum_by_code(codes, frame[CLUSTER].to_numpy(), values, counts, totals)
    sums = pd.DataFrame({
        artist: names, "tracks": counts.sum(axis=1),
        **{f"count_{c}": counts[:, c] for c in range(k)},
        **{f: totals[:, j] for j, f in enumerate(features)}})
    bucket = hash_ids(sums[artist]) % np.uint64(buckets)
    return [sums[bucket == b] for b in range(buckets)]


@numba.njit(cache=True, nogil=True)
def _sum_by_code(codes, labels, values, counts, sums):  # pragma: no cover - numba
    """Per code (rows with code -1 skipped): tracks per cluster into ``counts`` (a label
    outside ``0..k-1``, noise, in the last column) and feature sums in float64 into ``sums``,
    row by row in order, the sums ``bincount`` gives. One pass instead of a masked copy and a
    ``bincount`` per feature."""
    k = counts.shape[1] - 1
    for i in range(len(codes)):
        code = codes[i]
        if code < 0:
            continue
        label = labels[i]
        counts[code, label if 0 <= label < k else k] += 1
        for j in range(values.shape[1]):
            sums[code, j] += np.float64(values[i, j])


def _artist_rows(pieces: list[pd.DataFrame], *, features, k, artist, meta) -> pd.DataFrame:
    totals = pd.concat(pieces, ignore_index=True).groupby(artist, sort=True).sum()
    tracks = totals["tracks"].to_numpy()
    counts = totals[[f"count_{c}" for c in range(k)]].to_numpy()
    table = pd.DataFrame({
        artist: totals.index.to_numpy(),
        **{f"share_cluster_{c}": counts[:, c] / tracks for c in range(k)},
        **{f: totals[f].to_numpy() / tracks for f in features},
        "tracks": tracks.astype(np.int64),
        "dominant_cluster": counts.argmax(axis=1).astype(np.int32)})
    return table.astype(meta.dtypes.to_dict())


def album_popularity(scored: dd.DataFrame, min_tracks: int = 3, top: int = 1000
                     ) -> pd.DataFrame:
    """Albums with the highest share of popular tracks (popularity >= 70), at least
    ``min_tracks`` tracks each, best first.

    An album is its ``album_id`` when the catalog has one, else its (artist, album name):
    a title such as "Greatest Hits" names many albums. The table has the album's id or its
    artist, its name, tracks, popularity_mean, popular_tracks and popular_density.
    """
    if ALBUM_ID in scored.columns:
        keys, named = [ALBUM_ID], [c for c in (ALBUM, ARTIST) if c in scored.columns]
    else:
        keys, named = [c for c in (ARTIST, ALBUM) if c in scored.columns], []
    albums = scored[[*keys, *named, "popularity"]].dropna(subset=[*keys, "popularity"])
    albums = albums.assign(popular=(albums["popularity"] >= POPULAR).astype(np.int64))
    per_album = albums.groupby(keys).agg(
        {"popularity": ["count", "mean"], "popular": "sum", **{c: "first" for c in named}},
        split_out=max(1, scored.npartitions // 4))
    per_album.columns = ["tracks", "popularity_mean", "popular_tracks", *named]
    per_album = per_album[per_album["tracks"] >= min_tracks]
    per_album = per_album.assign(
        popular_density=per_album["popular_tracks"] / per_album["tracks"])
    best = per_album.nlargest(top, ["popular_density", "popularity_mean"]).compute()
    return best.reset_index()[[*keys, *named, "tracks", "popularity_mean", "popular_tracks",
                               "popular_density"]]


def _top_per_cluster(frame: pd.DataFrame, k: int, top: int, artist: str) -> pd.DataFrame:
    """Per cluster, the ``top`` artists with most tracks in it (ties by name)."""
    rows = []
    for c in range(k):
        tracks = (frame["tracks"] * frame[f"share_cluster_{c}"]).round().astype(np.int64)
        best = pd.DataFrame({artist: frame[artist], "tracks": tracks})
        best = best[best["tracks"] > 0].sort_values(["tracks", artist],
                                                    ascending=[False, True]).head(top)
        rows.append(best.assign(**{CLUSTER: c}))
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()


def top_artists(artists: dd.DataFrame, k: int, top: int = 10, artist: str = "artist_name"
                ) -> pd.DataFrame:
    """The artists with most tracks in each cluster, from :func:`artist_clusters`' table.

    Each partition of the (distributed) artist table sends its own top ``top`` per cluster;
    the best of those are the overall best, so the client sees at most
    ``partitions x k x top`` rows.
    """
    candidates = artists.map_partitions(_top_per_cluster, k, top, artist).compute()
    best = _top_per_cluster_from_candidates(candidates, top, artist)
    best.insert(1, "rank", best.groupby(CLUSTER).cumcount() + 1)
    return best


def _top_per_cluster_from_candidates(candidates: pd.DataFrame, top: int, artist: str
                                     ) -> pd.DataFrame:
    ordered = candidates.sort_values([CLUSTER, "tracks", artist],
                                     ascending=[True, False, True])
    return ordered.groupby(CLUSTER).head(top)[[CLUSTER, artist, "tracks"]].reset_index(
        drop=True)
