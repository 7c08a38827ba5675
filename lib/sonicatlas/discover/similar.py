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
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from sonicatlas.contract import CLUSTER, TRACK_ID
from sonicatlas.discover.kernels import column_scores
from sonicatlas.discover.querydata import (
    QueryRun,
    open_query_run,
    read_assigned,
    read_columns,
    read_ids,
    read_vectors,
    with_metadata,
)
from sonicatlas.errors import InputError

METRICS = ("cosine", "euclidean")
#: the score column of each metric: higher is closer for cosine, lower for euclidean
SCORE = {"cosine": "similarity", "euclidean": "distance"}


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
    X = np.asarray(vectors)
    q = np.asarray(query_vector, dtype=np.float64).ravel()
    if X.ndim != 2 or X.shape[1] != len(q):
        raise ValueError(f"vectors of shape {X.shape} and a query of {len(q)} features")
    return column_scores(tuple(X[:, j] for j in range(X.shape[1])), q,
                         check_metric(metric) == "cosine")


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
        Track ids, row for row (numpy, pandas or Arrow), each once.
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
    # The excluded track is one row: the best n + 1 without it are the best n, so only the
    # candidates' ids are compared, not every id.
    positions, names = top_n(keys, ids, n + (exclude is not None))
    if exclude is not None:
        keep = names != str(exclude)
        positions, names = positions[keep][:n], names[keep][:n]
    return pd.DataFrame({"position": positions, TRACK_ID: pd.array(names, dtype="string"),
                         SCORE[metric]: values[positions]})


# --- over a run ---------------------------------------------------------------------------

@dataclass(frozen=True)
class QueryTrack:
    """The track a query starts from: where it is, its standardised vector and cluster."""

    track_id: str
    part: str
    row: int
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
    return QueryTrack(track_id, part, int(row), vector, cluster)


def partition_top(run: QueryRun, part: str, query_vector: np.ndarray, n: int, metric: str,
                  exclude_row: int | None = None, cluster: int | None = None) -> pd.DataFrame:
    """One partition's candidates for the top ``n``: ``part``, ``position`` and the score;
    runs on a worker.

    The candidates are the rows whose score is the n-th best or better, so ties at the n-th
    are all kept: the order among tied rows needs their track ids, which are read afterwards
    for the few candidates only, not for every row. ``exclude_row`` (the query track's row in
    this part) is left out; the ``cluster`` column is read only to keep one cluster's tracks.
    """
    columns = read_columns(run, part)
    values = column_scores(columns, query_vector, check_metric(metric) == "cosine")
    keys = -values if metric == "cosine" else values.copy()
    if cluster is not None:
        clusters = read_assigned(run, part, [CLUSTER])[CLUSTER].to_numpy()
        if len(clusters) != len(values):
            raise InputError(f"{run.url}: query/{part} and assignments/{part} hold different "
                             "rows; re-run `sonicatlas run cluster-tracks`")
        keys[clusters != cluster] = np.inf
    if exclude_row is not None:
        keys[exclude_row] = np.inf
    positions = _at_most_nth(keys, n)
    return pd.DataFrame({"part": part, "position": positions,
                         SCORE[metric]: values[positions]})


def _at_most_nth(keys: np.ndarray, n: int) -> np.ndarray:
    """Positions of the finite ``keys`` no worse than the n-th smallest, ties included."""
    finite = np.flatnonzero(np.isfinite(keys))
    if n <= 0 or len(finite) == 0:
        return np.empty(0, dtype=np.int64)
    pool = keys[finite]
    if len(pool) <= n:
        return finite
    return finite[pool <= np.partition(pool, n - 1)[n - 1]]


def top_in_run(run: QueryRun, query_vector: np.ndarray, n: int, metric: str,
               exclude: QueryTrack | None = None, cluster: int | None = None) -> pd.DataFrame:
    """Exact top ``n`` over every partition of a run, with the tracks' metadata.

    A task per partition scores its rows and keeps its candidates (:func:`partition_top`); the
    client keeps the candidates no worse than the n-th best of them all, reads their ids and
    metadata from the parts that hold them, and orders them by (score, track_id). The answer
    is exact: every row of the global top n is a candidate of its own partition.

    Returns
    -------
    pandas.DataFrame
        ``rank``, ``track_id``, the score, ``cluster``, ``cluster_name`` and the carried
        metadata, best first.
    """
    task = dask.delayed(partition_top, pure=True)
    tops = dask.compute(*(task(run, part, query_vector, n, metric,
                               exclude.row if exclude is not None and exclude.part == part
                               else None, cluster)
                          for part in run.parts))
    score = SCORE[metric]
    frame = pd.concat(tops, ignore_index=True)
    keys = -frame[score].to_numpy() if metric == "cosine" else frame[score].to_numpy()
    frame = frame.iloc[_at_most_nth(keys, n)].reset_index(drop=True)
    table = with_metadata(run, frame)
    keys = -table[score].to_numpy() if metric == "cosine" else table[score].to_numpy()
    order = np.lexsort((table[TRACK_ID].astype(str).to_numpy(), keys))[:n]
    out = table.iloc[order].reset_index(drop=True)
    out.insert(0, "rank", np.arange(1, len(out) + 1))
    return out


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
    return query, top_in_run(run, query.vector, n, metric, exclude=query,
                             cluster=query.cluster if same_cluster else None)


def check_count(n: int, option: str, most: int = 500) -> int:
    """``n`` if it is within 1..``most``, else a one-line error naming ``option``."""
    if not 1 <= int(n) <= most:
        raise InputError(f"{option} must be between 1 and {most}, not {n}")
    return int(n)
