"""Is the structure real? Agreement between labelings, exact at any scale.

Adjusted Rand, normalized mutual information, homogeneity and completeness depend on the
labels only through their contingency table (clusters x classes), which one pass builds with a
per-chunk ``bincount``. The formulas are scikit-learn's (``adjusted_rand_score``,
``normalized_mutual_info_score`` with arithmetic mean, ``homogeneity_completeness_v_measure``).
"""

from __future__ import annotations

import dask
import dask.array as da
import numpy as np


def _pair_counts(a: np.ndarray, b: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    return np.bincount(a.astype(np.int64) * shape[1] + b, minlength=shape[0] * shape[1]
                       ).reshape(shape)


def contingency(labels_a, labels_b) -> np.ndarray:
    """Counts of rows per (label in ``a``, label in ``b``), for labels in 0..n-1.

    Both may be dask arrays with the same chunks, or numpy arrays. Negative labels (noise)
    are shifted up by one so that they count as a class of their own.
    """
    if isinstance(labels_a, da.Array):
        low_a, high_a, low_b, high_b = dask.compute(labels_a.min(), labels_a.max(),
                                                    labels_b.min(), labels_b.max())
    else:
        low_a, high_a = np.min(labels_a), np.max(labels_a)
        low_b, high_b = np.min(labels_b), np.max(labels_b)
    shift_a, shift_b = -min(int(low_a), 0), -min(int(low_b), 0)
    shape = (int(high_a) + shift_a + 1, int(high_b) + shift_b + 1)
    if not isinstance(labels_a, da.Array):
        return _pair_counts(np.asarray(labels_a) + shift_a, np.asarray(labels_b) + shift_b,
                            shape)
    parts = [dask.delayed(_pair_counts)(a + shift_a, b + shift_b, shape)
             for a, b in zip(labels_a.to_delayed().ravel(),
                             labels_b.rechunk(labels_a.chunks).to_delayed().ravel(),
                             strict=True)]
    return np.sum(dask.compute(*parts), axis=0)


def _comb2(x: np.ndarray) -> float:
    x = np.asarray(x, dtype=np.float64)
    return float((x * (x - 1) / 2).sum())


def adjusted_rand(table: np.ndarray) -> float:
    """Adjusted Rand index from a contingency table."""
    n = table.sum()
    index = _comb2(table)
    rows, cols = _comb2(table.sum(axis=1)), _comb2(table.sum(axis=0))
    expected = rows * cols / (n * (n - 1) / 2) if n > 1 else 0.0
    maximum = (rows + cols) / 2
    if maximum == expected:  # both labelings trivial: scikit-learn's convention
        return 1.0
    return (index - expected) / (maximum - expected)


def _entropy(counts: np.ndarray) -> float:
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log(p)).sum())


def _mutual_info(table: np.ndarray) -> float:
    """Mutual information (nats) of a contingency table of counts, whole or weighted."""
    p = table / table.sum()
    outer = np.outer(p.sum(axis=1), p.sum(axis=0))
    nonzero = p > 0
    return float(max((p[nonzero] * np.log(p[nonzero] / outer[nonzero])).sum(), 0.0))


def agreement(table: np.ndarray) -> dict[str, float]:
    """Adjusted Rand, NMI, homogeneity and completeness of clusters (rows) vs classes.

    ``table`` holds counts; weighted counts (a track shared by several classes with weights
    summing to one) give the same formulas over those weights.
    """
    table = np.asarray(table, dtype=np.float64)
    mi = _mutual_info(table)
    h_clusters, h_classes = _entropy(table.sum(axis=1)), _entropy(table.sum(axis=0))
    mean = (h_clusters + h_classes) / 2
    return {
        "adjusted_rand": adjusted_rand(table),
        "normalized_mutual_info": mi / mean if mean > 0 else 1.0,
        "homogeneity": mi / h_classes if h_classes > 0 else 1.0,
        "completeness": mi / h_clusters if h_clusters > 0 else 1.0,
    }
