"""Each sampled track's silhouette, under the run's clusters and under each compared method.

The silhouette is quadratic in the rows, so it is computed on the client over at most
``rows`` tracks of ``summary/track_sample`` (itself a reproducible uniform sample of every
track): their features as the run's float32 z-scores (the numbers ``query/`` holds), scored
as scikit-learn's ``silhouette_samples`` scores them, with the distances computed once for
every labelling. A density method's noise (-1) has no silhouette; a
labelling with fewer than two clusters on the sample has none at all. Written as
``summary/silhouette``; each cluster's mean becomes the ``silhouette`` column of its
profiles.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics.pairwise import euclidean_distances

from sonicatlas.contract import CLUSTER, TRACK_ID, method_cluster, method_silhouette

SILHOUETTE = "silhouette"


def silhouette_rows(sample: pd.DataFrame, rows: int, seed: int) -> pd.DataFrame:
    """At most ``rows`` of the track sample, drawn reproducibly, in the sample's order."""
    if len(sample) <= rows:
        return sample
    keep = np.random.default_rng(seed).choice(len(sample), size=rows, replace=False)
    return sample.iloc[np.sort(keep)]


def silhouettes(z: np.ndarray, labellings: list[np.ndarray]) -> list[np.ndarray]:
    """Each row's silhouette under each labelling, as scikit-learn's ``silhouette_samples``
    gives it on the rows that labelling does not call noise (-1); NaN for noise, and for every
    row when fewer than two clusters (or too few rows) are left.

    The pairwise distances are computed once, a block of rows at a time, and shared by every
    labelling; each labelling sums them per cluster with one matrix product per block.

    Parameters
    ----------
    z : ndarray of shape (n, d)
        The rows, in float64.
    labellings : list of ndarray of shape (n,)
        Integer labels; -1 is noise.

    Returns
    -------
    list of ndarray of shape (n,)
        One array of silhouettes per labelling.
    """
    n = len(z)
    codes, onehots = [], []
    for labels in labellings:
        kept = labels >= 0
        code = np.full(n, -1)
        clusters, code[kept] = np.unique(labels[kept], return_inverse=True)
        onehot = np.zeros((n, len(clusters)))
        onehot[np.flatnonzero(kept), code[kept]] = 1.0
        codes.append(code)
        onehots.append(onehot)
    sums = [np.empty_like(onehot) for onehot in onehots]
    step = max(1, 8_000_000 // max(n, 1))  # a block of distances holds at most 64 MB
    norms = np.einsum("ij,ij->i", z, z)[None, :]
    for start in range(0, n, step):
        block = euclidean_distances(z[start:start + step], z, Y_norm_squared=norms)
        for total, onehot in zip(sums, onehots, strict=True):
            total[start:start + step] = block @ onehot
    return [_from_sums(code, total) for code, total in zip(codes, sums, strict=True)]


def _from_sums(code: np.ndarray, total: np.ndarray) -> np.ndarray:
    """Silhouettes from each row's summed distance to every cluster (``silhouette_samples``'
    rules: a cluster of one track scores 0)."""
    values = np.full(len(code), np.nan)
    kept = np.flatnonzero(code >= 0)
    counts = np.bincount(code[kept], minlength=total.shape[1]).astype(np.float64)
    if not 2 <= total.shape[1] <= len(kept) - 1:
        return values
    own = code[kept]
    intra = total[kept, own] / np.maximum(counts[own] - 1, 1)
    other = total[kept] / counts
    other[np.arange(len(kept)), own] = np.inf
    nearest = other.min(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        score = (nearest - intra) / np.maximum(intra, nearest)
    values[kept] = np.where(counts[own] > 1, np.nan_to_num(score), 0.0)
    return values


def silhouette_table(sample: pd.DataFrame, features, scale_mean, scale_std, methods=(),
                     rows: int = 5_000, seed: int = 0) -> pd.DataFrame:
    """``summary/silhouette``: a row per sampled track with its silhouette per labelling.

    Parameters
    ----------
    sample : pandas.DataFrame
        ``summary/track_sample``: ``track_id``, ``cluster``, the features in their own units
        and ``cluster_<method>`` for each method in ``methods``.
    features : sequence of str
        The model's features, in its order.
    scale_mean, scale_std : sequence of float
        The run's scaler.
    methods : sequence of str
        Compared methods whose labels the sample carries.
    rows : int
        Most tracks scored (the cost grows with their square).
    seed : int
        Seed of the draw of those tracks from the sample.

    Returns
    -------
    pandas.DataFrame
        ``track_id``, ``cluster``, ``silhouette``, then ``cluster_<method>`` and
        ``silhouette_<method>`` per method.
    """
    chosen = silhouette_rows(sample, rows, seed).reset_index(drop=True)
    # the z-scores exactly as query/ stores them: float64 arithmetic, rounded to float32
    z = ((chosen[list(features)].to_numpy(dtype=np.float64) - np.asarray(scale_mean))
         / np.asarray(scale_std)).astype(np.float32).astype(np.float64)
    table = pd.DataFrame({TRACK_ID: chosen[TRACK_ID].to_numpy(),
                          CLUSTER: chosen[CLUSTER].to_numpy(dtype=np.int32)})
    for name in methods:
        table[method_cluster(name)] = chosen[method_cluster(name)].to_numpy(dtype=np.int32)
    labels = [CLUSTER, *map(method_cluster, methods)]
    values = silhouettes(z, [table[label].to_numpy() for label in labels])
    table.insert(2, SILHOUETTE, values[0])
    for name, value in zip(methods, values[1:], strict=True):
        table.insert(table.columns.get_loc(method_cluster(name)) + 1, method_silhouette(name),
                     value)
    return table


def cluster_means(table: pd.DataFrame, clusters, method: str | None = None) -> np.ndarray:
    """Mean silhouette of each cluster in ``clusters`` (NaN where the sample has none of its
    tracks, and for noise), under the run's clusters or ``method``'s."""
    label = CLUSTER if method is None else method_cluster(method)
    value = SILHOUETTE if method is None else method_silhouette(method)
    if label not in table:
        return np.full(len(clusters), np.nan)
    means = table.groupby(label)[value].mean()
    return means.reindex(np.asarray(clusters)).to_numpy(dtype=np.float64)
