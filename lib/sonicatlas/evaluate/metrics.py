"""Clustering quality metrics for choosing k at scale, without an n x n matrix.

Calinski-Harabasz and the within-cluster cost need only per-cluster moments (one pass);
Davies-Bouldin needs one more pass for the mean distance to each centroid; the silhouette is
estimated on a few reproducible random samples. Every pass returns only k x d partials per
chunk, summed in chunk order on the client, as in :mod:`sonicatlas.estimators.kmeans`. Definitions
match
scikit-learn's ``calinski_harabasz_score``, ``davies_bouldin_score`` and ``silhouette_score``.
"""

from __future__ import annotations

from dataclasses import dataclass

import dask
import dask.array as da
import numpy as np
from sklearn.metrics import silhouette_score

from sonicatlas.estimators.arrays import as_dask_array, sample_rows


@dataclass(frozen=True)
class ClusterMoments:
    """Per-cluster moments of the rows, in float64.

    ``scatter[j]`` is the sum of squared distances of cluster ``j``'s rows to its mean. It is
    merged from per-chunk centred sums (Chan et al.) rather than computed as
    ``sum_sq - |sum|^2 / count``, which cancels catastrophically when the data sit far from
    the origin.
    """

    count: np.ndarray  # (k,) int64
    sum: np.ndarray  # (k, d)
    scatter: np.ndarray  # (k,)
    n: int
    total_sum: np.ndarray  # (d,)

    @property
    def centers(self) -> np.ndarray:
        """Cluster means; rows of empty clusters are zero."""
        return self.sum / np.maximum(self.count, 1)[:, None]


@dataclass(frozen=True)
class SilhouetteSummary:
    """Silhouette scores of ``len(values)`` random samples of about ``sample_size`` rows."""

    mean: float
    std: float
    min: float
    max: float
    values: tuple[float, ...]
    sample_size: int
    exact: bool  # True when every row was used once: ``mean`` is the exact silhouette


def _aligned(X, labels) -> tuple[da.Array, da.Array]:
    """``X`` as dask with all columns in one block, and ``labels`` in the same row chunks."""
    X = as_dask_array(X)
    if X.numblocks[1] > 1:
        X = X.rechunk({1: -1})
    if not isinstance(labels, da.Array):
        labels = da.from_array(np.asarray(labels), chunks=(X.chunks[0],))
    if labels.shape != (X.shape[0],):
        raise ValueError(f"labels of shape {labels.shape} do not match {X.shape[0]} rows")
    if labels.chunks[0] != X.chunks[0]:
        labels = labels.rechunk((X.chunks[0],))
    return X, labels


def _per_chunk(func, X, labels, *args) -> np.ndarray:
    """``func(block, label_block, *args)`` on every chunk, stacked in chunk order."""
    X, labels = _aligned(X, labels)
    pairs = zip(X.to_delayed().ravel(), labels.to_delayed().ravel(), strict=True)
    return np.stack(dask.compute(*(dask.delayed(func)(b, lab, *args) for b, lab in pairs)))


def _checked(labels: np.ndarray, k: int) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.size and (labels.min() < 0 or labels.max() >= k):
        raise ValueError(f"labels must lie in 0..{k - 1}; got {labels.min()}..{labels.max()}")
    return labels.astype(np.intp, copy=False)


def _moments_partial(block: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    """k x (d + 2): per-cluster sums, count, and squared deviation from the chunk's mean."""
    x, labels, d = block.astype(np.float64, copy=False), _checked(labels, k), block.shape[1]
    out = np.zeros((k, d + 2))
    for j in range(d):
        out[:, j] = np.bincount(labels, weights=x[:, j], minlength=k)
    out[:, d] = np.bincount(labels, minlength=k)
    dev = x - (out[:, :d] / np.maximum(out[:, d], 1)[:, None])[labels]
    out[:, d + 1] = np.bincount(labels, weights=(dev * dev).sum(axis=1), minlength=k)
    return out


def _distance_partial(block: np.ndarray, labels: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """Per-cluster sum of Euclidean distances of the rows to their own cluster's center."""
    labels = _checked(labels, len(centers))
    dev = block.astype(np.float64, copy=False) - centers[labels]
    return np.bincount(labels, weights=np.sqrt((dev * dev).sum(axis=1)), minlength=len(centers))


def cluster_moments(X, labels, n_clusters: int) -> ClusterMoments:
    """Per-cluster count, sum and scatter of the rows, in one pass over the data.

    Parameters
    ----------
    X : dask.array.Array or ndarray of shape (n_samples, n_features)
        Rows, chunked by rows for dask input.
    labels : dask.array.Array or ndarray of shape (n_samples,)
        Integer cluster ids in ``0..n_clusters - 1``; rechunked to ``X``'s rows if needed.
    n_clusters : int
        Number of cluster ids; ids never used give empty clusters (count 0).

    Returns
    -------
    ClusterMoments
    """
    # Summed in chunk order on the client, so the result never depends on the scheduler.
    parts = _per_chunk(_moments_partial, X, labels, n_clusters)
    sums, counts = parts[:, :, :-2], parts[:, :, -2]
    count, total = counts.sum(axis=0), sums.sum(axis=0)
    offset = sums / np.maximum(counts, 1)[:, :, None] - total / np.maximum(count, 1)[:, None]
    # Parallel-variance merge: chunk scatter plus each chunk mean's offset from the overall mean.
    between = (counts * (offset * offset).sum(axis=2)).sum(axis=0)
    return ClusterMoments(count=count.astype(np.int64), sum=total,
                          scatter=parts[:, :, -1].sum(axis=0) + between,
                          n=int(count.sum()), total_sum=total.sum(axis=0))


def within_cluster_sse(moments: ClusterMoments) -> float:
    """Sum of squared distances of every row to its cluster mean (KMeans' inertia)."""
    return float(moments.scatter.sum())


def _present(moments: ClusterMoments) -> np.ndarray:
    """Non-empty clusters, after scikit-learn's check on how many labels are present."""
    present = moments.count > 0
    n_labels = int(present.sum())
    if not 1 < n_labels < moments.n:
        raise ValueError(f"Number of labels is {n_labels}. Valid values are 2 to "
                         "n_samples - 1 (inclusive)")
    return present


def calinski_harabasz(moments: ClusterMoments) -> float:
    """Calinski-Harabasz index, as ``sklearn.metrics.calinski_harabasz_score``.

    Empty clusters are dropped: scikit-learn sees only the labels present, so ``k`` is the
    number of non-empty clusters. Raises ValueError unless 2 <= k <= n - 1, like scikit-learn.
    """
    present = _present(moments)
    k, n = int(present.sum()), moments.n
    offset = moments.centers[present] - moments.total_sum / n
    extra = float((moments.count[present] * (offset * offset).sum(axis=1)).sum())
    intra = within_cluster_sse(moments)
    return 1.0 if intra == 0.0 else extra * (n - k) / (intra * (k - 1.0))


def davies_bouldin(X, labels, moments: ClusterMoments) -> float:
    """Davies-Bouldin index, as ``sklearn.metrics.davies_bouldin_score``.

    It needs each cluster's mean distance to its centroid, and the centroids are known only
    after the moments pass, so this is a second pass over the data (``X`` and ``labels`` must
    be those the moments came from). Empty clusters are dropped, as for
    :func:`calinski_harabasz`.
    """
    present = _present(moments)
    centers = moments.centers
    distances = _per_chunk(_distance_partial, X, labels, centers).sum(axis=0)
    intra = (distances / np.maximum(moments.count, 1))[present]
    centers = centers[present]
    diff = centers[:, None, :] - centers[None, :, :]
    between = np.sqrt((diff * diff).sum(axis=2))
    if np.allclose(intra, 0.0) or np.allclose(between, 0.0):
        return 0.0
    between[between == 0] = np.inf
    return float(np.mean(np.max((intra[:, None] + intra[None, :]) / between, axis=1)))


def silhouette_sampled(X, labels, sample_size: int = 20_000, n_samples: int = 5,
                       random_state: int = 0) -> SilhouetteSummary:
    """Silhouette score on ``n_samples`` random samples of about ``sample_size`` rows.

    The exact silhouette costs O(n^2) distances; a sample estimates it, and the spread over
    samples says how far to trust the estimate.

    Parameters
    ----------
    X, labels
        As for :func:`cluster_moments`.
    sample_size : int
        Expected rows per sample; each chunk keeps each row with probability
        ``sample_size / n`` (as :func:`sonicatlas.estimators.arrays.sample_rows`), so sizes vary a
        little.
    n_samples : int
        Number of independent samples.
    random_state : int
        Sample ``i`` draws chunk ``c``'s rows from ``(random_state, i, c)`` (via a
        ``SeedSequence``): the same seed and chunks give the same samples.

    Returns
    -------
    SilhouetteSummary
        With ``exact=True`` and a single value when ``X`` has at most ``sample_size`` rows:
        then every row is used once and the value is scikit-learn's exact score.
    """
    n = X.shape[0]
    if n <= sample_size:  # small enough to be exact: every row, once
        values = (float(silhouette_score(np.asarray(X), np.asarray(labels))),)
    else:
        X, labels = _aligned(X, labels)
        # Labels ride along as a float64 column (exact below 2**53), so sample_rows draws
        # each row together with its label.
        joined = da.concatenate([X.astype(np.float64), labels.astype(np.float64)[:, None]],
                                axis=1).rechunk({1: -1})
        # One integer seed per sample; sample_rows then seeds chunk c from (seed, c).
        seeds = np.random.SeedSequence(random_state).generate_state(n_samples)
        samples = (sample_rows(joined, sample_size, int(seed)) for seed in seeds)
        values = tuple(float(silhouette_score(rows[:, :-1], rows[:, -1].astype(np.int64)))
                       for rows in samples)
    return SilhouetteSummary(mean=float(np.mean(values)), std=float(np.std(values)),
                             min=min(values), max=max(values), values=values,
                             sample_size=min(sample_size, n), exact=n <= sample_size)


def evaluate(X, labels, n_clusters: int, *, silhouette_sample_size: int = 20_000,
             silhouette_samples: int = 5, random_state: int = 0) -> dict:
    """Every metric of this module for one clustering, computing the moments once.

    Each metric reads the data again (moments, Davies-Bouldin, each silhouette sample), so
    persist a dask ``X`` that is costly to produce.

    Parameters
    ----------
    X, labels, n_clusters
        As for :func:`cluster_moments`.
    silhouette_sample_size, silhouette_samples, random_state
        ``sample_size``, ``n_samples`` and ``random_state`` of :func:`silhouette_sampled`.

    Returns
    -------
    dict
        ``sse``, ``calinski_harabasz``, ``davies_bouldin``, ``silhouette_mean``,
        ``silhouette_std``, ``silhouette_sample_size`` and ``silhouette_exact``.
    """
    moments = cluster_moments(X, labels, n_clusters)
    scores = {"sse": within_cluster_sse(moments),
              "calinski_harabasz": calinski_harabasz(moments),  # raises first on 1 cluster
              "davies_bouldin": davies_bouldin(X, labels, moments)}
    silhouette = silhouette_sampled(X, labels, silhouette_sample_size, silhouette_samples,
                                    random_state)
    return {**scores, "silhouette_mean": silhouette.mean, "silhouette_std": silhouette.std,
            "silhouette_sample_size": silhouette.sample_size,
            "silhouette_exact": silhouette.exact}
