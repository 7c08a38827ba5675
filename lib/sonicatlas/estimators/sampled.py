"""Clustering methods to compare with KMeans, each fitted at scale and labelling every row.

Methods whose cost grows faster than linearly with the rows (a Gaussian mixture's EM on the
client, Ward's O(n^2) memory, mean shift, DBSCAN, HDBSCAN) fit scikit-learn's estimator on a
reproducible sample (:func:`sonicatlas.estimators.arrays.sample_rows`) and then label every row
chunk by
chunk on the workers; ``X`` is never collected. Mini-batch KMeans streams every row through
the client instead, one chunk at a time.

Every estimator has ``fit(X)`` (returns self), ``predict(X)`` (a dask array of int64 labels for
dask input, an ndarray for numpy input), and after fitting ``n_clusters_`` (labels lie in
``0..n_clusters_ - 1``, and ``-1`` marks noise for DBSCAN and HDBSCAN), ``fitted_on_sample_``,
``sample_size_`` (the rows the fit used) and ``fit_seconds_``. DBSCAN, HDBSCAN and mean shift
live in :mod:`sonicatlas.estimators.density`;
:func:`sonicatlas.estimators.registry.make_method` builds any method by name.
"""

from __future__ import annotations

import time
from functools import partial

import dask
import dask.array as da
import numpy as np
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.cluster import AgglomerativeClustering, kmeans_plusplus
from sklearn.cluster import MiniBatchKMeans as SklearnMiniBatchKMeans
from sklearn.mixture import GaussianMixture as SklearnGaussianMixture
from sklearn.utils.validation import check_is_fitted
from threadpoolctl import threadpool_limits

from sonicatlas.estimators.arrays import as_dask_array, sample_rows
from sonicatlas.estimators.lloyd import nearest_centers


def as_rows(X) -> da.Array:
    """``X`` as a dask array with all columns in one block, so every chunk holds whole rows."""
    X = as_dask_array(X)
    return X.rechunk({1: -1}) if X.numblocks[1] > 1 else X


def draw_sample(X: da.Array, size: int, seed: int, min_rows: int = 2) -> np.ndarray:
    """About ``size`` rows of ``X`` in float64 (all of them when fewer than ``min_rows`` came)."""
    if min_rows > X.shape[0]:
        raise ValueError(f"need at least {min_rows} rows to fit; got {X.shape[0]}")
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


def nearest_center_labels(block: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """Index of each row's nearest center (a labeler for :func:`label_rows`)."""
    return nearest_centers(block, centers)[0]


def _model_labels(block: np.ndarray, model) -> np.ndarray:
    return model.predict(block)


class SampledClusterer(ClusterMixin, BaseEstimator):
    """Base: fit ``_fit_sample`` on a sample of ``sample_size`` rows, label rows per chunk.

    Subclasses define ``_fit_sample(sample)`` (sets the learned attributes, including
    ``n_clusters_``) and ``_labeler()`` (a picklable block -> labels callable).
    """

    _min_rows = 2

    def fit(self, X, y=None):
        """Fit on a reproducible sample of ``X`` (numpy or dask, chunked by rows)."""
        start = time.perf_counter()
        X = as_rows(X)
        sample = draw_sample(X, self.sample_size, self.random_state, self._min_rows)
        self._fit_sample(sample)
        self.sample_size_ = len(sample)
        self.fitted_on_sample_ = len(sample) < X.shape[0]
        self.n_features_in_ = X.shape[1]
        self.fit_seconds_ = time.perf_counter() - start
        return self

    def predict(self, X):
        """Labels of every row (a dask array for dask input)."""
        check_is_fitted(self)
        return label_rows(X, self._labeler())

    def fit_predict(self, X, y=None):
        """``fit(X).predict(X)``: scikit-learn's version reads ``labels_``, never stored here."""
        return self.fit(X).predict(X)


class MiniBatchKMeans(SampledClusterer):
    """Mini-batch KMeans streamed over the chunks: one chunk on the client at a time.

    scikit-learn 1.9's own ``MiniBatchKMeans.fit`` draws each batch at a cost proportional
    to the whole dataset, and needs it in memory; here each chunk
    is fetched in chunk order (``block.compute()``), its rows shuffled (seeded by epoch and
    chunk, so the same seed and chunks give the same centers) and fed to ``partial_fit`` in
    slices of ``batch_size`` rows. ``partial_fit`` treats its whole input as one batch, so a
    whole chunk per call would be a single step with a million-row batch. Memory is O(chunk).

    ``partial_fit`` would seed the centers with k-means++ on the first batch alone, which
    comes from the first chunk only; instead the best of ``n_init`` k-means++ seedings on a
    sample drawn from every chunk is passed as ``init``.

    Parameters
    ----------
    n_clusters : int
    batch_size : int
        Rows per ``partial_fit`` step.
    max_epochs : int
        Passes over all the chunks.
    n_init : int
        k-means++ seedings on the sample; the one with the lowest sample cost is used.
    init_sample_size : int
        Rows in the seeding sample.
    random_state : int

    Attributes
    ----------
    cluster_centers_ : ndarray of shape (n_clusters, n_features)
    n_clusters_ : int
    n_steps_ : int
        ``partial_fit`` steps taken.
    n_iter_ : int
        Epochs run.
    model_ : sklearn.cluster.MiniBatchKMeans
    fitted_on_sample_ : bool
        False: every row is streamed.
    sample_size_ : int
        Rows of ``X``.
    fit_seconds_ : float
    """

    def __init__(self, n_clusters=8, *, batch_size=1024, max_epochs=3, n_init=3,
                 init_sample_size=100_000, random_state=0):
        self.n_clusters = n_clusters
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.n_init = n_init
        self.init_sample_size = init_sample_size
        self.random_state = random_state

    def fit(self, X, y=None):
        """Seed on a sample, then ``max_epochs`` streamed passes over every chunk."""
        if self.max_epochs < 1 or self.n_init < 1:
            raise ValueError(f"max_epochs and n_init must be >= 1; got {self.max_epochs} "
                             f"and {self.n_init}")
        start = time.perf_counter()
        X = as_rows(X)
        sample = draw_sample(X, self.init_sample_size, self.random_state, self.n_clusters)
        model = SklearnMiniBatchKMeans(
            self.n_clusters, init=self._seed(sample), n_init=1, batch_size=self.batch_size,
            compute_labels=False, random_state=self.random_state)
        blocks = X.to_delayed().ravel()
        # A step on ~1000 rows is too small to share: OpenMP threads only add synchronisation,
        # which on a busy host costs far more than the step.
        with threadpool_limits(1, user_api="openmp"):
            for epoch in range(self.max_epochs):
                for index, block in enumerate(blocks):
                    rows = np.asarray(block.compute())
                    # Catalog chunks may be sorted (by genre, by year): shuffle within each.
                    order = np.random.default_rng([self.random_state, epoch, index]
                                                  ).permutation(len(rows))
                    for first in range(0, len(rows), self.batch_size):
                        model.partial_fit(rows[order[first:first + self.batch_size]])
        self.model_ = model
        self.cluster_centers_ = model.cluster_centers_.astype(np.float64)
        self.n_clusters_ = self.n_clusters
        self.n_steps_ = model.n_steps_
        self.n_iter_ = self.max_epochs
        self.sample_size_ = int(X.shape[0])
        self.fitted_on_sample_ = False
        self.n_features_in_ = X.shape[1]
        self.fit_seconds_ = time.perf_counter() - start
        return self

    def _seed(self, sample: np.ndarray) -> np.ndarray:
        seeds = np.random.SeedSequence(self.random_state).generate_state(self.n_init)
        best, best_cost = None, np.inf
        for seed in seeds:
            centers, _ = kmeans_plusplus(sample, self.n_clusters, random_state=int(seed))
            cost = nearest_centers(sample, centers)[1].sum()
            if cost < best_cost:
                best, best_cost = centers, cost
        return best

    def _labeler(self):
        return partial(nearest_center_labels, centers=self.cluster_centers_)


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
    random_state : int
        Seed of the sample and of scikit-learn's initialisation.

    Attributes
    ----------
    model_ : sklearn.mixture.GaussianMixture
    n_clusters_ : int
        ``n_components``.
    sample_labels_ : ndarray
        The model's labels of the sample.
    fitted_on_sample_, sample_size_, fit_seconds_
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

    def _fit_sample(self, sample):
        self.model_ = SklearnGaussianMixture(
            n_components=self.n_components, covariance_type=self.covariance_type,
            n_init=self.n_init, max_iter=self.max_iter, random_state=self.random_state,
        ).fit(sample)
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
    random_state : int
        Seed of the sample (the clustering itself is deterministic).

    Attributes
    ----------
    cluster_centers_ : ndarray of shape (n_clusters, n_features)
    sample_labels_ : ndarray
        scikit-learn's labels of the sample.
    model_ : sklearn.cluster.AgglomerativeClustering
    n_clusters_, fitted_on_sample_, sample_size_, fit_seconds_
    """

    def __init__(self, n_clusters=8, *, linkage="ward", sample_size=10_000, random_state=0):
        self.n_clusters = n_clusters
        self.linkage = linkage
        self.sample_size = sample_size
        self.random_state = random_state

    @property
    def _min_rows(self):
        return max(2, self.n_clusters)

    def _fit_sample(self, sample):
        self.model_ = AgglomerativeClustering(n_clusters=self.n_clusters,
                                              linkage=self.linkage).fit(sample)
        labels = self.model_.labels_
        counts = np.bincount(labels, minlength=self.n_clusters)
        sums = np.stack([np.bincount(labels, weights=sample[:, j], minlength=self.n_clusters)
                         for j in range(sample.shape[1])], axis=1)
        self.cluster_centers_ = sums / counts[:, None]  # every cluster has a sample row
        self.sample_labels_ = labels
        self.n_clusters_ = self.n_clusters

    def _labeler(self):
        return partial(nearest_center_labels, centers=self.cluster_centers_)
