"""Per-partition work over persisted dask DataFrames, reading the held partitions directly.

dask-expr reads a persisted frame through one alias task per partition (the frame's keys
renamed to its futures' keys). A worker stores each alias's result, the very object it already
holds, under a second key and counts its size again; a pass over every partition of a large
persisted frame then looks twice its size, and the worker spills real data to make room for
the phantom copy (at 100M tracks, most of what the summaries and the writes spilled). Tasks
built on the futures themselves depend on the held partitions with no alias between.
"""

from __future__ import annotations

from collections.abc import Callable

import dask
import dask.dataframe as dd
import pandas as pd


def partitions(frame: dd.DataFrame) -> list:
    """Each partition of ``frame``, to pass to a delayed call: the future that holds it when
    ``frame`` is persisted on a distributed cluster, else its delayed task."""
    from distributed import Future

    graph = frame.__dask_graph__()
    held = []
    for key in frame.__dask_keys__():
        # a persisted partition's key is an alias whose one dependency is the future
        depends = tuple(getattr(graph.get(key), "dependencies", ()))
        target = graph.get(depends[0]) if len(depends) == 1 else None
        if not isinstance(target, Future):
            return frame.to_delayed()
        held.append(target)
    return held


def map_partitions(func: Callable[..., pd.DataFrame], *frames: dd.DataFrame,
                   meta: pd.DataFrame) -> dd.DataFrame:
    """``func`` applied to the partitions of ``frames`` with the same number, one task each.

    Like ``dask.dataframe.map_partitions(func, *frames, align_dataframes=False)``, but each
    persisted frame's partitions come straight from its futures (:func:`partitions`).

    Parameters
    ----------
    func : callable
        ``(partition of frames[0], partition of frames[1], ...) -> pandas.DataFrame``.
    *frames : dask.dataframe.DataFrame
        Frames with the same number of partitions, persisted or not.
    meta : pandas.DataFrame
        An empty frame with the result's columns and dtypes.

    Returns
    -------
    dask.dataframe.DataFrame
        One partition per input partition, with the divisions of ``frames[0]``.
    """
    counts = {frame.npartitions for frame in frames}
    if len(counts) != 1:
        raise ValueError(f"frames with different numbers of partitions: {sorted(counts)}")
    tasks = [dask.delayed(func, pure=False)(*parts)
             for parts in zip(*map(partitions, frames), strict=True)]
    return dd.from_delayed(tasks, meta=meta, divisions=frames[0].divisions, verify_meta=False)
