"""Playlists: the tracks closest to a cluster's centre or to a few seed tracks, with rules.

A track qualifies when its cosine similarity to the target (the cluster's centre, or the mean
of the seeds' standardised vectors) is at least ``min_similarity`` (and, for a cluster, it is in
that cluster). The playlist walks the qualifying tracks best first (ties by track_id), skips an
artist already there ``max_per_artist`` times, and stops at ``size``.

Distributed, each partition keeps its ``limit`` best tracks after its own per-artist cap. That
is exact when every partition that had more to give stopped below the playlist's last track in
the same order (any track it left out comes later still); when one did not, the partitions are
asked again for four times as many.
"""

from __future__ import annotations

from dataclasses import dataclass

import dask
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from sonicatlas.contract import ARTIST, CLUSTER, TRACK_ID
from sonicatlas.discover.querydata import (
    QueryRun,
    open_query_run,
    read_assigned,
    read_ids,
    read_vectors,
    with_metadata,
)
from sonicatlas.discover.similar import check_count, find_track, scores, top_n
from sonicatlas.errors import InputError
from sonicatlas.runs.export import resolve_cluster

ORDERS = ("similarity", "flow")


@dataclass(frozen=True)
class Playlist:
    """A playlist and how it was made.

    Attributes
    ----------
    tracks : pandas.DataFrame
        ``rank``, ``track_id``, ``similarity`` (to the target), ``cluster``, ``cluster_name``,
        the carried metadata, and with ``flow`` order ``step`` (distance from the previous
        track).
    qualified : int
        Tracks at or above the similarity threshold (in the cluster, if one was asked).
    target : str
        What the similarity is measured to.
    mean_step : float
        Mean euclidean distance between consecutive tracks' standardised features.
    """

    tracks: pd.DataFrame
    qualified: int
    target: str
    mean_step: float


def check_rules(size: int, min_similarity: float, max_per_artist: int, order: str) -> None:
    """One-line errors for rules out of range."""
    check_count(size, "--size")
    if not -1.0 <= float(min_similarity) <= 1.0:
        raise InputError(f"--min-similarity must be between -1 and 1, not {min_similarity}")
    if int(max_per_artist) < 1:
        raise InputError(f"--max-per-artist must be at least 1, not {max_per_artist}")
    if order not in ORDERS:
        raise InputError(f"unknown --order {order!r}; choose {' or '.join(ORDERS)}")


def capped(order_ids: np.ndarray, artists: np.ndarray, cap: int, stop: int | None = None
           ) -> np.ndarray:
    """Positions (into the given order) kept when no artist may appear more than ``cap``
    times, the first ``stop`` of them at most; a missing artist is nobody's."""
    seen: dict = {}
    keep = []
    for i, artist in enumerate(artists):
        if stop is not None and len(keep) >= stop:
            break
        if artist is None or artist is pd.NA or (isinstance(artist, float) and artist != artist):
            keep.append(i)
            continue
        if seen.get(artist, 0) < cap:
            seen[artist] = seen.get(artist, 0) + 1
            keep.append(i)
    return np.asarray(keep, dtype=np.int64)


def _partition_candidates(run: QueryRun, part: str, target: np.ndarray, min_similarity: float,
                          cluster: int | None, exclude: tuple[str, ...], cap: int, limit: int
                          ) -> tuple[pd.DataFrame, int, bool]:
    """This partition's best ``limit`` qualifying tracks after its own cap; how many
    qualified; whether it had more."""
    vectors = read_vectors(run, part)
    columns = [CLUSTER] + ([ARTIST] if ARTIST in run.carried else [])
    assigned = read_assigned(run, part, columns)
    similarity = scores(vectors, target, "cosine")
    ok = similarity >= min_similarity
    if cluster is not None:
        ok &= assigned[CLUSTER].to_numpy() == cluster
    ids = read_ids(run, part)
    if exclude:
        ok &= ~pc.is_in(ids, value_set=pa.array(list(exclude), ids.type)).to_numpy(
            zero_copy_only=False)
    qualified = int(ok.sum())
    keys = np.where(ok, -similarity, np.inf)
    positions, names = top_n(keys, ids, qualified)  # every qualifying row, best first
    artists = (assigned[ARTIST].to_numpy(dtype=object)[positions] if ARTIST in assigned
               else np.full(len(positions), None, dtype=object))
    kept = capped(names, artists, cap, stop=limit + 1)
    more = len(kept) > limit
    kept = kept[:limit]
    rows = positions[kept]
    frame = pd.DataFrame({TRACK_ID: names[kept], "similarity": similarity[rows],
                          CLUSTER: assigned[CLUSTER].to_numpy()[rows], ARTIST: artists[kept],
                          "part": part})
    frame["vector"] = list(vectors[rows].astype(np.float64))
    return frame, qualified, more


def _walk(candidates: pd.DataFrame, size: int, cap: int) -> pd.DataFrame:
    order = np.lexsort((candidates[TRACK_ID].astype(str).to_numpy(),
                        -candidates["similarity"].to_numpy()))
    ranked = candidates.iloc[order].reset_index(drop=True)
    kept = capped(ranked[TRACK_ID].to_numpy(), ranked[ARTIST].to_numpy(dtype=object), cap)
    return ranked.iloc[kept[:size]].reset_index(drop=True)


def _before(a: tuple[float, str], b: tuple[float, str]) -> bool:
    """Whether (similarity, id) ``a`` comes before ``b`` in the playlist's order."""
    return a[0] > b[0] or (a[0] == b[0] and a[1] < b[1])


def flow_order(vectors: np.ndarray) -> np.ndarray:
    """A chain through the rows from row 0, each step to the nearest row not yet used.

    Where the chain's mean step would be longer than that of the given order, the given order
    is kept, so flow is never worse on average than the similarity order.
    """
    n = len(vectors)
    if n < 3:
        return np.arange(n)
    left = np.ones(n, dtype=bool)
    chain = [0]
    left[0] = False
    for _ in range(n - 1):
        here = vectors[chain[-1]]
        distance = np.where(left, ((vectors - here) ** 2).sum(axis=1), np.inf)
        chain.append(int(np.argmin(distance)))
        left[chain[-1]] = False
    chain = np.asarray(chain)
    return chain if mean_step(vectors[chain]) <= mean_step(vectors) else np.arange(n)


def steps(vectors: np.ndarray) -> np.ndarray:
    """Euclidean distance from each row to the next."""
    return np.sqrt(((np.diff(vectors, axis=0)) ** 2).sum(axis=1))


def mean_step(vectors: np.ndarray) -> float:
    return float(steps(vectors).mean()) if len(vectors) > 1 else 0.0


def make_playlist(run: QueryRun | str, cluster: int | str | None = None,
                  seeds: tuple[str, ...] = (), size: int = 30, min_similarity: float = 0.8,
                  max_per_artist: int = 2, order: str = "similarity") -> Playlist:
    """A playlist from one cluster (its centre) or from seed tracks (their mean).

    Parameters
    ----------
    run : QueryRun or str
    cluster : int or str, optional
        The cluster's id or name; the playlist holds only its tracks.
    seeds : tuple of str
        Seed track ids (left out of the playlist); give these or ``cluster``.
    size : int
        1..500 tracks at most.
    min_similarity : float
        -1..1, cosine to the target.
    max_per_artist : int
    order : {"similarity", "flow"}
        Best first, or a chain of close steps from the most central track.

    Returns
    -------
    Playlist

    Raises
    ------
    InputError
        Rules out of range, an unknown cluster (the names are listed) or seed track, or both
        or neither of ``cluster`` and ``seeds``.
    """
    check_rules(size, min_similarity, max_per_artist, order)
    run = open_query_run(run)
    if (cluster is None) == (not seeds):
        raise InputError("give either a cluster or seed tracks")
    if cluster is not None:
        profiles = pd.DataFrame({CLUSTER: range(len(run.names)), "name": list(run.names)})
        chosen, name = resolve_cluster(profiles, cluster)
        target, what = np.asarray(run.model.centers[chosen], dtype=np.float64), \
            f"the centre of cluster {chosen} ({name})"
    else:
        found = [find_track(run, s) for s in seeds]
        unknown = [s for s, f in zip(seeds, found, strict=True) if f is None]
        if unknown:
            raise InputError(f"unknown seed track id {unknown[0]!r} in {run.url}")
        chosen, target = None, np.mean([f.vector for f in found], axis=0)
        what = f"the mean of {len(seeds)} seed track{'s' if len(seeds) > 1 else ''}"
    limit = 2 * int(size)
    task = dask.delayed(_partition_candidates, pure=True)
    while True:
        results = dask.compute(*(task(run, part, target, float(min_similarity), chosen,
                                      tuple(map(str, seeds)), int(max_per_artist), limit)
                                 for part in run.parts))
        chosen_rows = _walk(pd.concat([r[0] for r in results], ignore_index=True), size,
                            int(max_per_artist))
        if _complete(results, chosen_rows, size):
            break
        limit *= 4
    qualified = sum(r[1] for r in results)
    vectors = np.stack(chosen_rows["vector"].to_list()) if len(chosen_rows) else \
        np.empty((0, len(run.features)))
    if order == "flow":
        chain = flow_order(vectors)
        chosen_rows, vectors = chosen_rows.iloc[chain].reset_index(drop=True), vectors[chain]
        chosen_rows["step"] = np.concatenate([[0.0], steps(vectors)]) if len(vectors) else []
    table = with_metadata(run, chosen_rows.drop(columns=["vector", ARTIST]))
    table.insert(0, "rank", np.arange(1, len(table) + 1))
    return Playlist(table, qualified, what, mean_step(vectors))


def _complete(results, chosen: pd.DataFrame, size: int) -> bool:
    truncated = [r[0].iloc[-1] for r in results if r[2]]
    if not truncated:
        return True
    if len(chosen) < size:
        return False
    last = (chosen["similarity"].iloc[-1], str(chosen[TRACK_ID].iloc[-1]))
    return all(_before(last, (row["similarity"], str(row[TRACK_ID]))) for row in truncated)
