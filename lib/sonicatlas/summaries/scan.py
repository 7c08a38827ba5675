"""Several reductions over a dask DataFrame's partitions in one pass.

Every summary of a run (a sample, per-cluster statistics, nearest tracks, category counts,
map bins) is a per-partition partial result, combined pairwise in partition order and
finished on the client. Computed one by one, each is a pass over the scored tracks; when
those do not fit in memory (100M tracks on 24 GiB), each pass reads the spilled partitions
back from disk. :func:`scan` builds every reduction on the same partition tasks and computes
them together, so each partition is loaded once for all of them.

A :class:`Regroup` is the same idea for tables too large for the client (one row per
artist): each partition reduces its own rows per key and splits them into hash buckets;
bucket ``b`` combines piece ``b`` of every partition, on the workers. That is a shuffle of
the reduced rows only, not of the tracks.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from functools import reduce
from typing import Any

import dask
import dask.dataframe as dd
import pandas as pd


def _same(value):
    return value


@dataclass(frozen=True)
class Reduction:
    """How to reduce a frame: ``finish(combine(partial(p0, 0), partial(p1, 1), ...))``.

    Attributes
    ----------
    partial : callable
        ``(partition, number) -> partial result``: runs on the worker that holds the partition.
    combine : callable
        Associative ``(a, b) -> combined``; applied in partition order (float sums are then
        the same on any cluster), in a tree on the workers.
    finish : callable
        The combined result -> what the caller gets, on the client.
    """

    partial: Callable[[pd.DataFrame, int], Any]
    combine: Callable[[Any, Any], Any]
    finish: Callable[[Any], Any] = _same


@dataclass(frozen=True)
class Regroup:
    """A keyed table that stays distributed: one partition per hash bucket of the key.

    Attributes
    ----------
    partial : callable
        ``(partition, number, buckets) -> list of buckets frames``: the partition's own rows
        reduced per key, split by a hash of the key (the same key always to the same bucket).
    combine : callable
        ``list of frames -> frame``: one bucket's pieces, in partition order, reduced per key.
    meta : pandas.DataFrame
        An empty frame with the result's columns and dtypes.
    buckets : int
        Partitions of the result.
    """

    partial: Callable[[pd.DataFrame, int, int], list]
    combine: Callable[[list], pd.DataFrame]
    meta: pd.DataFrame
    buckets: int = 1


def concat(a: pd.DataFrame, b: pd.DataFrame) -> pd.DataFrame:
    """``combine`` for partials that are rows to keep."""
    return pd.concat([a, b], ignore_index=True)


def _combine_all(combine, parts: list):
    return reduce(combine, parts)


def _level(parts: list, combine, split_every: int) -> list:
    """One level of a combine tree: each run of ``split_every`` parts, in order, combined."""
    return [dask.delayed(_combine_all, pure=False)(combine, parts[i:i + split_every])
            for i in range(0, len(parts), split_every)]


def _tree(parts: list, combine, split_every: int):
    while len(parts) > 1:
        parts = _level(parts, combine, split_every)
    return parts[0]


def _client():
    """The distributed client computing dask's graphs, if any (the scan also runs on dask's
    local schedulers)."""
    try:
        from distributed import default_client
        client = default_client()
    except (ImportError, ValueError):
        return None
    return client if dask.base.get_scheduler() == client.get else None


def scan(frame: dd.DataFrame, reductions: dict[str, Reduction | Regroup],
         split_every: int = 8) -> dict[str, Any]:
    """Compute every reduction over ``frame`` in one pass over its partitions.

    Parameters
    ----------
    frame : dask.dataframe.DataFrame
    reductions : dict of str to Reduction or Regroup
    split_every : int
        Partials combined per tree task.

    Returns
    -------
    dict
        The finished result of each :class:`Reduction`, by name; for each :class:`Regroup`,
        a dask DataFrame persisted on the workers.
    """
    parts = frame.to_delayed()  # the same partition tasks feed every reduction
    token = uuid.uuid4().hex[:8]  # keys named after the reductions, for the dashboard

    def key(name: str, *index) -> str:
        return "-".join(map(str, (f"{name}-partial", token, *index)))

    partials = {name: [dask.delayed(r.partial, pure=False)(part, i, dask_key_name=key(name, i))
                       for i, part in enumerate(parts)]
                for name, r in reductions.items() if isinstance(r, Reduction)}
    pieces = {name: [dask.delayed(r.partial, nout=r.buckets, pure=False)(
                  part, i, r.buckets, dask_key_name=key(name, i)) for i, part in enumerate(parts)]
              for name, r in reductions.items() if isinstance(r, Regroup)}
    # The first level of every tree, one task per reduction and run of split_every partitions
    firsts = {name: _level(p, reductions[name].combine, split_every)
              for name, p in partials.items()}
    client = _client()
    if client is not None and pieces and len(parts) > split_every:
        # A regroup's buckets need every partition, so dask orders such a graph partition by
        # partition in no set sequence and runs no tree's first combine until nearly all
        # partitions are done, holding every partial (map bins: ~85 MB each) meanwhile. Each
        # run of split_every partitions goes in at its own priority, earliest highest, so a
        # run is loaded, reduced and combined before the next.
        runs = -(-len(parts) // split_every)
        for run in range(runs):
            starts = range(run * split_every, min((run + 1) * split_every, len(parts)))
            batch = [firsts[name][run] for name in firsts]
            batch += [pieces[name][i] for name in pieces for i in starts]
            held = iter(client.persist(batch, priority=runs - run))
            for name in firsts:
                firsts[name][run] = next(held)
            for name in pieces:
                for i in starts:
                    pieces[name][i] = next(held)
    trees = {name: _tree(level, reductions[name].combine, split_every)
             for name, level in firsts.items()}
    grouped = {name: [dask.delayed(reductions[name].combine, pure=False)([p[b] for p in ps])
                      for b in range(reductions[name].buckets)]
               for name, ps in pieces.items()}
    # One graph: persisting the buckets and the trees together computes each partition once.
    trees, grouped = dask.persist(trees, grouped)
    combined = dask.compute(trees)[0]
    done = {name: r.finish(combined[name]) for name, r in reductions.items()
            if isinstance(r, Reduction)}
    for name, buckets in grouped.items():
        done[name] = dd.from_delayed(buckets, meta=reductions[name].meta, verify_meta=False)
    return done
