"""Similar songs: the exact top-n of one track by cosine or euclidean, ties broken by track_id.

:func:`similar_to` is the pure numpy (and compiled) answer over a matrix already in memory, as
the explorer holds it; :func:`similar_tracks` is the same over a run's query data, each
partition's top-n computed where it lies (dask tasks), one merge on the client. The merge is
exact because every partition ranks by the same total order (score, then track_id): the global
top-n is within the union of the partitions' top-n.
"""

from __future__ import annotations

from dataclasses import dataclass

import dask
import numba
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from sonicatlas.contract import CLUSTER, TRACK_ID
from sonicatlas.discover.querydata import (
    QueryRun,
    open_query_run,
    read_assigned,
    read_ids,
    read_vectors,
    with_metadata,
)
from sonicatlas.errors import InputError

METRICS = ("cosine", "euclidean")
#: the score column of each metric: higher is closer for cosine, lower for euclidean
SCORE = {"cosine": "similarity", "euclidean": "distance"}


@numba.njit(cache=True, nogil=True)
def _cosine(X, q, out):  # pragma: no cover - numba
    # row by row in float64, in feature order: the same number for a row wherever it lies
    qq = 0.0
    for j in range(q.shape[0]):
        qq += q[j] * q[j]
    for i in range(X.shape[0]):
        dot = 0.0
        xx = 0.0
        for j in range(X.shape[1]):
            x = np.float64(X[i, j])
            dot += x * q[j]
            xx += x * x
        out[i] = dot / np.sqrt(xx * qq) if xx > 0.0 and qq > 0.0 else 0.0


@numba.njit(cache=True, nogil=True)
def _euclidean(X, q, out):  # pragma: no cover - numba
    for i in range(X.shape[0]):
        s = 0.0
        for j in range(X.shape[1]):
            d = np.float64(X[i, j]) - q[j]
            s += d * d
        out[i] = np.sqrt(s)


def check_metric(metric: str) -> str:
    if metric not in METRICS:
        raise InputError(f"unknown metric {metric!r}; choose {' or '.join(METRICS)}")
    return metric


def scores(vectors: np.ndarray, query_vector: np.ndarray, metric: str = "cosine"
           ) -> np.ndarray:
    """Cosine similarity (0 for a zero vector) or euclidean distance of every row to the query.

    Parameters
    ----------
    vectors : numpy.ndarray
        (rows, features), float32 or float64.
    query_vector : numpy.ndarray
        (features,).
    metric : {"cosine", "euclidean"}

    Returns
    -------
    numpy.ndarray
        float64, one per row.
    """
    X = np.asarray(vectors)  # any memory layout: the kernels index rows and columns
    q = np.asarray(query_vector, dtype=np.float64).ravel()
    if X.ndim != 2 or X.shape[1] != len(q):
        raise ValueError(f"vectors of shape {X.shape} and a query of {len(q)} features")
    out = np.empty(len(X), dtype=np.float64)
    (_cosine if check_metric(metric) == "cosine" else _euclidean)(X, q, out)
    return out


def _take(ids, positions: np.ndarray) -> np.ndarray:
    """``ids[positions]`` as a numpy array of str, for Arrow, pandas or numpy ids."""
    if isinstance(ids, (pa.Array, pa.ChunkedArray)):
        return np.array(ids.take(pa.array(positions, pa.int64())).to_pylist(), dtype=object)
    if isinstance(ids, (pd.Series, pd.Index)):
        return np.asarray(pd.Series(ids).iloc[positions].astype(str), dtype=object)
    return np.asarray(ids, dtype=object)[positions].astype(str).astype(object)


def top_n(keys: np.ndarray, ids, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Positions and ids of the ``n`` smallest finite ``keys``, ties by id.

    Only the rows tied with the n-th key or better have their ids read.
    """
    finite = np.isfinite(keys)
    candidates = np.flatnonzero(finite) if not finite.all() else None
    pool = keys if candidates is None else keys[candidates]
    if n <= 0 or len(pool) == 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=object)
    if len(pool) > n:
        threshold = np.partition(pool, n - 1)[n - 1]
        chosen = np.flatnonzero(pool <= threshold)
    else:
        chosen = np.arange(len(pool))
    positions = chosen if candidates is None else candidates[chosen]
    names = _take(ids, positions)
    order = np.lexsort((names, keys[positions]))[:n]
    return positions[order], names[order]


def similar_to(vectors: np.ndarray, ids, query_vector: np.ndarray, n: int = 10,
               metric: str = "cosine", exclude: str | None = None,
               mask: np.ndarray | None = None) -> pd.DataFrame:
    """The ``n`` rows of ``vectors`` closest to ``query_vector``: exact, ties by track id.

    Parameters
    ----------
    vectors : numpy.ndarray
        Standardised features, (tracks, features).
    ids : array-like of str
        Track ids, row for row (numpy, pandas or Arrow).
    query_vector : numpy.ndarray
        Standardised features of the query, (features,).
    n : int
    metric : {"cosine", "euclidean"}
    exclude : str, optional
        A track id left out (the query track itself).
    mask : numpy.ndarray of bool, optional
        Only rows where it is true (for example one cluster's).

    Returns
    -------
    pandas.DataFrame
        ``position`` (row in ``vectors``), ``track_id`` and ``similarity`` (cosine) or
        ``distance`` (euclidean), best first.
    """
    values = scores(vectors, query_vector, metric)
    keys = -values if metric == "cosine" else values.copy()
    if mask is not None:
        keys[~np.asarray(mask, dtype=bool)] = np.inf
    if exclude is not None:
        if isinstance(ids, (pa.Array, pa.ChunkedArray)):
            same = pc.equal(ids, pa.scalar(str(exclude), ids.type)).to_numpy(
                zero_copy_only=False)
        else:
            same = np.asarray(ids, dtype=object) == str(exclude)
        keys[np.asarray(same, dtype=bool)] = np.inf
    positions, names = top_n(keys, ids, n)
    return pd.DataFrame({"position": positions, TRACK_ID: pd.array(names, dtype="string"),
                         SCORE[metric]: values[positions]})


# --- over a run ---------------------------------------------------------------------------

@dataclass(frozen=True)
class QueryTrack:
    """The track a query starts from: where it is, its standardised vector and cluster."""

    track_id: str
    part: str
    vector: np.ndarray
    cluster: int


def find_track(run: QueryRun, track_id: str) -> QueryTrack | None:
    """The query track's vector and cluster, found by one read of the ids on the workers."""
    look = dask.delayed(_find_in_part, pure=True)
    found = [hit for hit in dask.compute(*(look(run, part, str(track_id))
                                           for part in run.parts)) if hit is not None]
    return found[0] if found else None


def _find_in_part(run: QueryRun, part: str, track_id: str) -> QueryTrack | None:
    ids = read_ids(run, part)
    row = pc.index(ids, pa.scalar(track_id, ids.type)).as_py()
    if row < 0:
        return None
    vector = read_vectors(run, part)[row].astype(np.float64)
    cluster = int(read_assigned(run, part, [CLUSTER])[CLUSTER].iloc[row])
    return QueryTrack(track_id, part, vector, cluster)


def partition_top(run: QueryRun, part: str, query_vector: np.ndarray, n: int, metric: str,
                  exclude: str | None = None, cluster: int | None = None) -> pd.DataFrame:
    """One partition's top ``n`` (``track_id``, score, ``cluster``, ``part``); runs on a
    worker."""
    vectors = read_vectors(run, part)
    clusters = read_assigned(run, part, [CLUSTER])[CLUSTER].to_numpy()
    if len(clusters) != len(vectors):
        raise InputError(f"{run.url}: query/{part} and assignments/{part} hold different "
                         "rows; re-run `sonicatlas run cluster-tracks`")
    mask = None if cluster is None else clusters == cluster
    top = similar_to(vectors, read_ids(run, part), query_vector, n, metric, exclude, mask)
    top[CLUSTER] = clusters[top["position"].to_numpy()].astype(np.int32)
    top["part"] = part
    return top.drop(columns=["position"])


def merge_top(tops: list[pd.DataFrame], n: int, metric: str) -> pd.DataFrame:
    """The best ``n`` of the partitions' tops, by the same order (score, then track_id)."""
    frame = pd.concat(tops, ignore_index=True)
    score = SCORE[metric]
    key = -frame[score].to_numpy() if metric == "cosine" else frame[score].to_numpy()
    order = np.lexsort((frame[TRACK_ID].astype(str).to_numpy(), key))[:n]
    out = frame.iloc[order].reset_index(drop=True)
    out.insert(0, "rank", np.arange(1, len(out) + 1))
    return out


def top_in_run(run: QueryRun, query_vector: np.ndarray, n: int, metric: str,
               exclude: str | None = None, cluster: int | None = None) -> pd.DataFrame:
    """Exact top ``n`` over every partition of a run: a task per partition, one merge."""
    task = dask.delayed(partition_top, pure=True)
    tops = dask.compute(*(task(run, part, query_vector, n, metric, exclude, cluster)
                          for part in run.parts))
    return merge_top(list(tops), n, metric)


def similar_tracks(run: QueryRun | str, track_id: str, n: int = 10, metric: str = "cosine",
                   same_cluster: bool = False) -> tuple[QueryTrack, pd.DataFrame]:
    """The ``n`` tracks most similar to ``track_id`` in a run, with their metadata.

    Parameters
    ----------
    run : QueryRun or str
        A cluster-tracks run (see :func:`~sonicatlas.discover.querydata.open_query_run`).
    track_id : str
    n : int
        1..500.
    metric : {"cosine", "euclidean"}
    same_cluster : bool
        Only tracks of the query track's cluster.

    Returns
    -------
    query : QueryTrack
    table : pandas.DataFrame
        ``rank``, ``track_id``, ``similarity`` (or ``distance``), ``cluster``,
        ``cluster_name`` and the carried metadata, best first; never the query track.

    Raises
    ------
    InputError
        Unknown track id, ``n`` outside 1..500, unknown metric.
    """
    run = open_query_run(run)
    check_metric(metric)
    check_count(n, "-n")
    query = find_track(run, track_id)
    if query is None:
        raise InputError(f"unknown track id {track_id!r} in {run.url}")
    top = top_in_run(run, query.vector, n, metric, exclude=query.track_id,
                     cluster=query.cluster if same_cluster else None)
    return query, with_metadata(run, top)


def check_count(n: int, option: str, most: int = 500) -> int:
    """``n`` if it is within 1..``most``, else a one-line error naming ``option``."""
    if not 1 <= int(n) <= most:
        raise InputError(f"{option} must be between 1 and {most}, not {n}")
    return int(n)
