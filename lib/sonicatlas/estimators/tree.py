"""The top of a hierarchical clustering's merge tree: the last merges over a few leaves.

A merge tree over a sample has a leaf per row, far too many to draw. Its last ``m - 1``
merges join ``m`` groups of rows; each group becomes one leaf, at its centroid (the quantity
Ward's criterion works with), and those merges are kept as they are: the same heights, the
same order, in SciPy's ``linkage`` format with leaves numbered ``0..m-1``. Cutting the kept
tree above its last ``k - 1`` merges gives the tree's ``k`` clusters.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class TreeTop:
    """The last merges of a tree over ``len(leaf_sizes)`` leaves."""

    #: (m - 1, 4): merged ids (leaves ``0..m-1``, then merge ``i`` is ``m + i``), height,
    #: sample rows under the merge
    linkage: np.ndarray
    #: (m, d): mean of each leaf's rows
    leaf_centers: np.ndarray
    #: (m,): rows in each leaf
    leaf_sizes: np.ndarray
    #: (m,): the cluster of each leaf's rows
    leaf_labels: np.ndarray


def tree_top(linkage: np.ndarray, rows: np.ndarray, labels: np.ndarray, n_leaves: int
             ) -> TreeTop:
    """The last ``n_leaves - 1`` merges of ``linkage`` over its ``rows``.

    Parameters
    ----------
    linkage : ndarray of shape (n - 1, 4)
        A merge tree of the ``n`` rows in SciPy's format, merges in the order they were made.
    rows : ndarray of shape (n, d)
        The rows the tree was built on.
    labels : ndarray of shape (n,)
        Each row's cluster; every leaf's rows should share one (a cut of the same tree at
        ``n_leaves`` clusters or fewer). A leaf takes its rows' most common label.
    n_leaves : int
        Leaves kept (at most ``n``).

    Returns
    -------
    TreeTop
        Leaves numbered by their smallest node id in ``linkage``.
    """
    n = len(rows)
    m = max(1, min(int(n_leaves), n))
    below = n - m  # merges that happen inside the leaves
    top = np.arange(2 * n - 1)
    for i in range(below - 1, -1, -1):  # parents have larger ids: walk down from the top
        for child in linkage[i, :2].astype(np.int64):
            top[child] = top[n + i]
    leaf_nodes, leaf_of_row = np.unique(top[:n], return_inverse=True)
    index = {int(node): j for j, node in enumerate(leaf_nodes)}
    kept = linkage[below:].copy()
    for col in (0, 1):
        kept[:, col] = [index[int(c)] if int(c) in index else m + int(c) - n - below
                        for c in linkage[below:, col]]
    sizes = np.bincount(leaf_of_row, minlength=m)
    centers = np.stack([np.bincount(leaf_of_row, weights=rows[:, j], minlength=m)
                        for j in range(rows.shape[1])], axis=1) / sizes[:, None]
    labels = np.asarray(labels, dtype=np.int64)
    # most common label per leaf: count (leaf, label) pairs, take each leaf's largest
    pairs = pd.crosstab(leaf_of_row, labels)
    leaf_labels = pairs.columns.to_numpy()[pairs.to_numpy().argmax(axis=1)]
    return TreeTop(kept, centers, sizes.astype(np.int64), leaf_labels)
