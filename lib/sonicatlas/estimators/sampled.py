"""Clustering methods to compare with KMeans, each fitted at scale and labelling every row.

Methods whose cost grows faster than linearly with the rows (a Gaussian mixture's EM on the
client, Ward's O(n^2) memory, mean shift, DBSCAN, HDBSCAN) fit scikit-learn's estimator on a
reproducible sample (:func:`sonicatlas.estimators.arrays.sample_rows`) and then label every row
chunk by chunk on the workers; ``X`` is never collected. Mini-batch KMeans streams every row
through the client instead, one chunk at a time
(:mod:`sonicatlas.estimators.minibatch`).

Every estimator has ``fit(X)`` (returns self), ``predict(X)`` and ``fit_predict(X)`` (a dask
array of int64 labels for dask input, an ndarray for numpy input), and after fitting
``labels_`` (the same, for the fitted rows), ``n_clusters_`` (labels lie in
``0..n_clusters_ - 1``, and ``-1`` marks noise for DBSCAN and HDBSCAN), ``fitted_on_sample_``,
``sample_size_`` (the rows the fit used), ``n_features_in_`` and ``fit_seconds_``. DBSCAN,
HDBSCAN and mean shift live in :mod:`sonicatlas.estimators.density`;
:func:`sonicatlas.estimators.registry.make_method` builds any method by name.
"""

from __future__ import annotations

import time
from functools import partial

import dask
import dask.array as da
import numpy as np
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.cluster import AgglomerativeClustering
from sklearn.mixture import GaussianMixture as SklearnGaussianMixture
from sklearn.utils.validation import check_is_fitted

from sonicatlas.estimators.arrays import as_rows, sample_rows
from sonicatlas.estimators.conventions import LabelsMixin, check_rows, seed_of
from sonicatlas.estimators.lloyd import nearest_center_labels
from sonicatlas.estimators.tree import tree_top

#: Leaves of the top of Ward's tree kept for a dendrogram (twice the clusters when more).
TREE_LEAVES = 30


def draw_sample(X: da.Array, size: int, seed: int, min_rows: int = 2) -> np.ndarray:
    """About ``size`` rows of ``X`` in float64 (all of them when fewer than ``min_rows`` came)."""
    if min_rows > X.shape[0]:
        raise ValueError(f"need at least {min_rows} rows to fit (n_samples={X.shape[0]})")
    sample = sample_rows(X, size, seed)
    if len(sample) < min_rows:  # tiny input or sample: use every row
        sample = np.asarray(X.compute(), dtype=np.float64)
    return sample


def _label_block(block: np.ndarray, labeler) -> np.ndarray:
    if len(block) == 0:  # neighbour searches reject empty input
        return np.empty(0, dtype=np.int64)
    # float64 as the sample was, so a sample row gets the label the fit gave it
    return np.asarray(labeler(block.astype(np.float64, copy=False)), dtype=np.int64)


def label_rows(X, labeler):
    """``labeler`` applied to every chunk of ``X`` on the workers (directly to numpy input).

    ``labeler`` maps a float64 block to int labels; it enters the graph once as a delayed
    object, not once per chunk, since it may carry thousands of sample points.
    """
    if isinstance(X, da.Array):
        X = as_rows(X)
        return X.map_blocks(_label_block, dask.delayed(labeler), drop_axis=1, dtype=np.int64,
                            meta=np.empty((0,), dtype=np.int64))
    return _label_block(np.asarray(X), labeler)


def _model_labels(block: np.ndarray, model) -> np.ndarray:
    return model.predict(block)


def linkage_matrix(children: np.ndarray, distances: np.ndarray) -> np.ndarray:
    """scikit-learn's merge tree (``children_``, ``distances_``) in SciPy's linkage format:
    the two merged ids, the height, and the number of original rows under the merge."""
    n = len(children) + 1
    sizes = np.ones(2 * n - 1)
    for i, (a, b) in enumerate(children):
        sizes[n + i] = sizes[a] + sizes[b]
    return np.column_stack([children.astype(np.float64), distances, sizes[n:]])


class SampledClusterer(LabelsMixin, ClusterMixin, BaseEstimator):
    """Base: fit ``_fit_sample`` on a sample of ``sample_size`` rows, label rows per chunk.

    Subclasses define ``_fit_sample(sample, seed)`` (sets the learned attributes, including
    ``n_clusters_``) and ``_labeler()`` (a picklable block -> labels callable), or override
    ``_fit_rows(X, seed)`` to fit on every row.

    Notes
    -----
    numpy input (lists, pandas frames) is checked as scikit-learn checks it and ``labels_``
    is an ndarray. A dask array must know its chunk sizes and is not scanned for NaN; its
    ``labels_`` is a lazy dask array (``fit`` makes no pass to label), left out of pickles
    (:class:`sonicatlas.estimators.conventions.LabelsMixin`). The seed comes from
    ``random_state`` once per fit (:func:`sonicatlas.estimators.conventions.seed_of`).
    """

    _min_rows = 2

    def fit(self, X, y=None):
        """Fit on a reproducible sample of ``X``, then label its rows (lazily for dask input).

        Parameters
        ----------
        X : array-like or dask.array.Array of shape (n_samples, n_features)
            A dask array must know its chunk sizes (``X.compute_chunk_sizes()``).
        y : ignored

        Returns
        -------
        self
        """
        start = time.perf_counter()
        X = check_rows(self, X, reset=True, known_rows=True)
        self._fit_rows(as_rows(X), seed_of(self.random_state))
        self.fit_seconds_ = time.perf_counter() - start
        self.labels_ = label_rows(X, self._labeler())
        return self

    def _fit_rows(self, X: da.Array, seed: int):
        sample = draw_sample(X, self.sample_size, seed, self._min_rows)
        self._fit_sample(sample, seed)
        self.sample_size_ = len(sample)
        self.fitted_on_sample_ = len(sample) < X.shape[0]

    def predict(self, X):
        """Label of every row.

        Parameters
        ----------
        X : array-like or dask.array.Array of shape (n_samples, n_features)

        Returns
        -------
        ndarray or dask.array.Array of int64, shape (n_samples,)
            A dask array (one task per chunk, on the workers) for dask input.
        """
        check_is_fitted(self)
        return label_rows(check_rows(self, X, reset=False), self._labeler())


class GaussianMixture(SampledClusterer):
    """scikit-learn's ``GaussianMixture`` fitted on a sample; rows take its ``predict``.

    Parameters
    ----------
    n_components : int
    covariance_type : {'full', 'tied', 'diag', 'spherical'}
    n_init, max_iter : int
        As for scikit-learn.
    sample_size : int
        Rows in the fitting sample; EM runs on the client, so it is bounded.
    random_state : int, numpy.random.RandomState or None, default=0
        Seed of the sample and of scikit-learn's initialisation; a ``RandomState`` gives one
        seed drawn from it, None a fresh one.

    Attributes
    ----------
    model_ : sklearn.mixture.GaussianMixture
    n_clusters_ : int
        ``n_components``.
    n_iter_ : int
        EM iterations of the best initialisation.
    sample_labels_ : ndarray
        The model's labels of the sample.
    labels_ : ndarray or dask.array.Array of int64, shape (n_samples,)
        Label of every fitted row, as ``predict`` gives it: lazy for dask input.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Column names, when fitted on a pandas DataFrame.
    fitted_on_sample_, sample_size_, fit_seconds_

    Notes
    -----
    numpy and dask input: see :class:`sonicatlas.estimators.sampled.SampledClusterer`.
    """

    def __init__(self, n_components=8, *, covariance_type="full", n_init=1, max_iter=100,
                 sample_size=100_000, random_state=0):
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.n_init = n_init
        self.max_iter = max_iter
        self.sample_size = sample_size
        self.random_state = random_state

    @property
    def _min_rows(self):
        return self.n_components

    def _fit_sample(self, sample, seed):
        self.model_ = SklearnGaussianMixture(
            n_components=self.n_components, covariance_type=self.covariance_type,
            n_init=self.n_init, max_iter=self.max_iter, random_state=seed,
        ).fit(sample)
        self.n_iter_ = self.model_.n_iter_
        self.sample_labels_ = self.model_.predict(sample)
        self.n_clusters_ = self.n_components

    def _labeler(self):
        return partial(_model_labels, model=self.model_)


class Agglomerative(SampledClusterer):
    """Agglomerative clustering of a sample; every row takes its nearest cluster centroid.

    Ward's linkage keeps the pairwise distances of the sample, O(n^2) memory: 10,000 rows
    are ~400 MB. A cluster's centroid is the mean of its sample rows, the quantity Ward's
    criterion works with, so the nearest centroid is the natural label of an unseen row.

    Parameters
    ----------
    n_clusters : int
    linkage : {'ward', 'complete', 'average', 'single'}
    sample_size : int
    random_state : int, numpy.random.RandomState or None, default=0
        Seed of the sample (the clustering itself is deterministic); a ``RandomState`` gives
        one seed drawn from it, None a fresh one.

    Attributes
    ----------
    cluster_centers_ : ndarray of shape (n_clusters, n_features)
    sample_labels_ : ndarray
        scikit-learn's labels of the sample.
    linkage_matrix_ : ndarray of shape (sample_size_ - 1, 4)
        The whole merge tree of the sample in SciPy's ``linkage`` format (merged ids, height,
        rows under the merge): scikit-learn's ``children_`` and ``distances_``, whose cut at
        ``n_clusters`` gives ``sample_labels_``.
    tree_top_ : sonicatlas.estimators.tree.TreeTop
        Its last merges, over the larger of ``TREE_LEAVES`` and ``2 * n_clusters`` leaves
        (groups of sample rows, at their centroids): what a dendrogram shows.
    model_ : sklearn.cluster.AgglomerativeClustering
    labels_ : ndarray or dask.array.Array of int64, shape (n_samples,)
        Label of every fitted row, as ``predict`` gives it: lazy for dask input.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Column names, when fitted on a pandas DataFrame.
    n_clusters_, fitted_on_sample_, sample_size_, fit_seconds_

    Notes
    -----
    numpy and dask input: see :class:`sonicatlas.estimators.sampled.SampledClusterer`.
    """

    def __init__(self, n_clusters=8, *, linkage="ward", sample_size=10_000, random_state=0):
        self.n_clusters = n_clusters
        self.linkage = linkage
        self.sample_size = sample_size
        self.random_state = random_state

    @property
    def _min_rows(self):
        return max(2, self.n_clusters)

    def _fit_sample(self, sample, seed):
        self.model_ = AgglomerativeClustering(n_clusters=self.n_clusters, linkage=self.linkage,
                                              compute_distances=True).fit(sample)
        self.linkage_matrix_ = linkage_matrix(self.model_.children_, self.model_.distances_)
        self.tree_top_ = tree_top(self.linkage_matrix_, sample, self.model_.labels_,
                                  max(TREE_LEAVES, 2 * self.n_clusters))
        labels = self.model_.labels_
        counts = np.bincount(labels, minlength=self.n_clusters)
        sums = np.stack([np.bincount(labels, weights=sample[:, j], minlength=self.n_clusters)
                         for j in range(sample.shape[1])], axis=1)
        self.cluster_centers_ = sums / counts[:, None]  # every cluster has a sample row
        self.sample_labels_ = labels
        self.n_clusters_ = self.n_clusters

    def _labeler(self):
        return partial(nearest_center_labels, centers=self.cluster_centers_)
