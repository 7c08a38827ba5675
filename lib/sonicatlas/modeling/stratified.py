"""A reproducible sample of a run's tracks, stratified by cluster, taken where the rows are.

The map projections that cannot be fitted on every track (UMAP, t-SNE, ICA) are fitted on
this sample; a uniform one would leave a cluster of a few hundred tracks out of a
100,000-track sample of ten million, and its tracks would be placed among the others.
"""

from __future__ import annotations

from dataclasses import dataclass

import dask
import dask.dataframe as dd
import numpy as np
import pandas as pd


def stratified_quotas(sizes: pd.Series, size: int) -> pd.Series:
    """Rows to draw from each cluster for a sample of ``size`` rows.

    Parameters
    ----------
    sizes : pandas.Series
        Rows per cluster, indexed by cluster label (noise, -1, is a cluster like any other).
    size : int
        Rows wanted in all.

    Returns
    -------
    pandas.Series of int64
        Rows per cluster, same index; they add up to ``min(size, sizes.sum())``.

    Notes
    -----
    The rule: when the clusters hold ``size`` rows or fewer, every row. Otherwise each of the
    ``k`` clusters first gets its floor, ``min(its size, size // (2 k))`` (half the sample
    shared equally, so a small cluster shows on the maps whatever its share), and the rest of
    the sample is shared among the clusters in proportion to the rows each has left beyond
    its floor, by largest remainder (ties to the lower label). No cluster gets more rows than
    it has.
    """
    sizes = sizes.astype(np.int64).sort_index()
    if sizes.sum() <= size:
        return sizes.copy()
    floor = np.minimum(sizes, size // (2 * len(sizes)))
    left = sizes - floor
    rest = size - int(floor.sum())
    share = rest * left.to_numpy(dtype=np.float64) / left.sum()
    extra = np.floor(share).astype(np.int64)
    short = rest - int(extra.sum())
    order = np.argsort(-(share - extra), kind="stable")  # largest remainder; stable: label
    extra[order[:short]] += 1
    return floor + extra


@dataclass(frozen=True)
class StratifiedSample:
    """Rows of a stratified sample: where they are, their clusters and their columns.

    ``positions[i]`` holds the sampled rows' positions within partition ``i`` (ascending);
    ``rows`` holds those rows in partition order, then position order, with ``clusters``
    their labels.
    """

    positions: list[np.ndarray]
    clusters: np.ndarray
    rows: pd.DataFrame


def stratified_sample(labels: dd.Series, frame: dd.DataFrame, size: int, seed: int
                      ) -> StratifiedSample:
    """Take a sample of ``frame``'s rows stratified by ``labels`` (:func:`stratified_quotas`).

    Parameters
    ----------
    labels : dask.dataframe.Series
        Each row's cluster; partition ``i`` holds the labels of ``frame``'s partition ``i``,
        row for row (the persisted scores of a run).
    frame : dask.dataframe.DataFrame
        The columns to bring back for the sampled rows.
    size : int
        Rows wanted in all.
    seed : int
        Same seed, labels and partitions: same rows.

    Returns
    -------
    StratifiedSample

    Notes
    -----
    Two small passes. The first counts each cluster's rows per partition. Then, for each
    cluster, ``numpy.random.default_rng((seed, label + 1))`` draws its quota of ranks among
    the cluster's rows (in partition order) without replacement, so the draw of one cluster
    does not depend on the others. The second pass turns each partition's ranks into row
    positions and returns only those rows.
    """
    if labels.npartitions != frame.npartitions:
        raise ValueError(f"labels in {labels.npartitions} partitions, rows in "
                         f"{frame.npartitions}")
    counts = dask.compute(*[dask.delayed(_label_counts)(p) for p in labels.to_delayed()])
    per_part = pd.DataFrame(list(counts)).fillna(0).astype(np.int64)
    per_part = per_part.reindex(sorted(per_part.columns), axis=1)
    quotas = stratified_quotas(per_part.sum(), size)
    picks: list[dict] = [{} for _ in range(len(per_part))]
    for label, quota in quotas.items():
        column = per_part[label].to_numpy()
        ranks = np.sort(np.random.default_rng((seed, int(label) + 1)).choice(
            int(column.sum()), int(quota), replace=False))
        starts = np.concatenate([[0], np.cumsum(column)])
        which = np.searchsorted(starts, ranks, side="right") - 1  # partition of each rank
        for part in np.unique(which):
            picks[part][label] = ranks[which == part] - starts[part]
    taken = dask.compute(*[dask.delayed(_take)(labels_part, part, chosen)
                           for labels_part, part, chosen in zip(
                               labels.to_delayed(), frame.to_delayed(), picks, strict=True)])
    positions = [t[0] for t in taken]
    rows = pd.concat([t[1] for t in taken], ignore_index=True)
    return StratifiedSample(positions, np.concatenate([t[2] for t in taken]), rows)


def _label_counts(labels: pd.Series) -> dict:
    values, counts = np.unique(labels.to_numpy(), return_counts=True)
    return {int(v): int(n) for v, n in zip(values, counts, strict=True)}


def _take(labels: pd.Series, part: pd.DataFrame, chosen: dict
          ) -> tuple[np.ndarray, pd.DataFrame, np.ndarray]:
    values = labels.to_numpy()
    found = [np.flatnonzero(values == label)[ranks] for label, ranks in chosen.items()]
    positions = np.sort(np.concatenate(found)) if found else np.zeros(0, dtype=np.int64)
    return positions, part.iloc[positions], values[positions]
