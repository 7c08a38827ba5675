"""Distributed KMeans: k-means++ restarts on a sample, then exact Lloyd iterations on every row.

Why not ``dask_ml.cluster.KMeans`` directly (measured in docs/benchmarks.md): its default
``k-means||`` initialisation is slow and seed-dependent, ``init='k-means++'`` fails on current
scikit-learn, its Lloyd iteration costs several times scikit-learn's, and its ``inertia_`` is not
the squared cost. This estimator keeps dask-ml's interface (fit/predict/transform on dask or
numpy arrays) and does one pass over the persisted chunks per iteration; each chunk returns only
k x d sums.
"""

from __future__ import annotations

import logging
import time

import dask
import dask.array as da
import numpy as np
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    ClusterMixin,
    TransformerMixin,
)
from sklearn.utils.validation import check_is_fitted

from sonicatlas.estimators.arrays import as_dask_array, delayed_sample
from sonicatlas.estimators.conventions import LabelsMixin, check_rows, seed_of
from sonicatlas.estimators.lloyd import (
    candidate_costs,
    center_distances,
    lloyd_partial,
    lloyd_step,
    mean_variance,
    nearest_center_labels,
    refine,
    restart,
    sample_block,
)

log = logging.getLogger(__name__)


def seed_centers(X: da.Array, n_clusters: int, n_init: int, init_sample_size: int, seed: int,
                 tol: float) -> tuple[np.ndarray, float, np.ndarray]:
    """KMeans' seeding: k-means++ restarts on a sample, the cheapest on a second one refined.

    ``n_init`` restarts (:func:`~sonicatlas.estimators.lloyd.restart`) converge on a sample of
    ``init_sample_size`` rows; each is costed on a second sample of about a million rows
    (:func:`~sonicatlas.estimators.lloyd.candidate_costs`), and the cheapest is brought to a
    Lloyd fixed point there (:func:`~sonicatlas.estimators.lloyd.refine`).

    Parameters
    ----------
    X : dask.array.Array of shape (n_samples, n_features)
        Chunk sizes known.
    n_clusters, n_init, init_sample_size, seed : int
    tol : float
        Relative tolerance (times the first sample's mean feature variance).

    Returns
    -------
    centers : numpy.ndarray of shape (n_clusters, n_features)
    tol : float
        The absolute tolerance on the squared center shift.
    costs : numpy.ndarray of shape (n_init,)
        Each restart's cost on the second sample.
    """
    n = X.shape[0]
    if n_clusters > n:
        raise ValueError(f"n_clusters={n_clusters} is larger than the number of rows "
                         f"(n_samples={n})")
    # Both samples are drawn in one pass over the chunks (a chunk computed on demand, such
    # as a scaled one, is computed once for both) and stay on the workers; the restarts run
    # there too, in parallel, each on one thread (so the centers do not depend on any
    # machine's cores), and only centers and costs come back. The workers run only
    # :mod:`sonicatlas.estimators.lloyd`, which never imports scikit-learn.
    # The second sample, about a million rows: optima a few percent apart are told apart
    # with certainty, at a tenth of a pass over 10M rows. A restart's cost on its own sample
    # flatters the restarts that fit that sample's noise.
    fraction = min(1.0, 1_000_000 / max(n, 1))
    pieces = [dask.delayed(sample_block)(b, seed + 1, i, fraction)
              for i, b in enumerate(X.to_delayed().ravel())]
    sample, *pieces = dask.persist(delayed_sample(X, init_sample_size, seed), *pieces)
    if dask.compute(dask.delayed(len)(sample))[0] < n_clusters:
        sample = dask.delayed(np.asarray(X.compute(), dtype=np.float64))  # tiny input: all
    seeds = np.random.RandomState(seed).randint(2**31 - 1, size=n_init)
    absolute = tol * dask.delayed(mean_variance)(sample)  # the same for every fit after
    candidates = dask.delayed(np.stack)(
        [dask.delayed(restart)(sample, n_clusters, int(s), absolute)
         for s in seeds])  # up to 300 iterations each, as scikit-learn's default
    costs = [dask.delayed(candidate_costs)(p, candidates) for p in pieces]
    # the cheapest converged on the second sample (one task), so that the passes over every
    # row start close to where they end
    centers = dask.delayed(refine)(candidates, costs, pieces, absolute)
    centers, costs, absolute = dask.compute(centers, costs, absolute)
    return centers, float(absolute), np.sum(costs, axis=0)


class KMeans(LabelsMixin, ClassNamePrefixFeaturesOutMixin, ClusterMixin, TransformerMixin,
             BaseEstimator):
    """Lloyd's KMeans over a chunked array, seeded by k-means++ restarts on a sample.

    Parameters
    ----------
    n_clusters : int, default=8
        Number of clusters.
    n_init : int, default=10
        k-means++ restarts on the sample (:func:`sonicatlas.estimators.lloyd.restart`: what
        scikit-learn's ``KMeans(n_init=1)`` does); the one with the lowest cost on a second,
        larger sample (all rows up to a million) is converged on that sample
        (:func:`sonicatlas.estimators.lloyd.refine`) and seeds the full fit.
    init_sample_size : int, default=100_000
        Rows in the sample used for initialisation.
    max_iter : int, default=300
        Lloyd iterations over all rows at most.
    tol : float, default=1e-4
        Relative tolerance: stop when the squared center shift is at most ``tol`` times the
        mean feature variance (scikit-learn's convention).
    random_state : int, numpy.random.RandomState or None, default=0
        Seed of the samples and of the restarts. An int gives the same result for the same
        chunks on any cluster; a ``RandomState`` gives one seed drawn from it
        (:func:`sonicatlas.estimators.conventions.seed_of`); None a fresh one.

    Attributes
    ----------
    cluster_centers_ : ndarray of shape (n_clusters, n_features)
    labels_ : ndarray or dask.array.Array of int64, shape (n_samples,)
        Nearest center of every row of the fitted data: an ndarray for numpy input, a lazy
        dask array (one task per chunk, nothing computed by ``fit``) for dask input.
    inertia_ : float
        Exact sum of squared distances of every row to its center.
    n_iter_ : int
        Lloyd iterations run on the full data.
    cluster_sizes_ : ndarray of int64
    init_costs_ : ndarray of shape (n_init,)
        Cost of each restart's centers on a second sample of about a million rows; the
        cheapest seeded the fit.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Column names, when fitted on a pandas DataFrame.
    n_clusters_ : int
        ``n_clusters``, as every clustering method of the package reports it.
    fitted_on_sample_ : bool
        False: the Lloyd passes use every row.
    sample_size_ : int
        Rows of the fitted data.
    fit_seconds_ : float

    Notes
    -----
    numpy input is wrapped in a dask array of 1M-row chunks and fitted the same way, so the
    same numbers give the same centers either way. ``predict`` and ``transform`` return dask
    arrays for dask input and ndarrays otherwise. A dask input must know its chunk sizes
    (``X.compute_chunk_sizes()``); it is not scanned for NaN. A pickled fit leaves out a dask
    ``labels_`` (:class:`sonicatlas.estimators.conventions.LabelsMixin`).
    """

    def __init__(self, n_clusters=8, *, n_init=10, init_sample_size=100_000, max_iter=300,
                 tol=1e-4, random_state=0):
        self.n_clusters = n_clusters
        self.n_init = n_init
        self.init_sample_size = init_sample_size
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state

    def fit(self, X, y=None):
        """Seed on samples, then Lloyd passes over every row.

        Parameters
        ----------
        X : array-like or dask.array.Array of shape (n_samples, n_features)
        y : ignored

        Returns
        -------
        self
        """
        start = time.perf_counter()
        given = check_rows(self, X, reset=True, known_rows=True)
        seed = seed_of(self.random_state)
        X = as_dask_array(given)
        n = X.shape[0]
        centers, tol, costs = seed_centers(X, self.n_clusters, self.n_init,
                                           self.init_sample_size, seed, self.tol)
        self.init_costs_ = costs
        blocks = X.to_delayed().ravel()

        for iteration in range(1, self.max_iter + 1):
            centers, shift = lloyd_step(self._pass(blocks, centers), centers)
            log.debug("iteration %d: center shift %.3g", iteration, shift)
            if shift <= tol:
                break
        # Labels and cost of the final centers (the last pass used the centers before them).
        stats = self._pass(blocks, centers)
        self.cluster_centers_ = centers
        self.cluster_sizes_ = stats[:, -2].astype(np.int64)
        self.inertia_ = float(stats[:, -1].sum())
        self.n_iter_ = iteration
        # what every clustering method here reports: Lloyd's passes use every row
        self.n_clusters_ = self.n_clusters
        self.fitted_on_sample_ = False
        self.sample_size_ = int(n)
        self.fit_seconds_ = time.perf_counter() - start
        self.labels_ = self._labels(given)  # lazy for dask input: no pass here
        return self

    @staticmethod
    def _pass(blocks, centers: np.ndarray) -> np.ndarray:
        partials = dask.compute(*(dask.delayed(lloyd_partial)(b, centers)
                                  for b in blocks))
        # Summed in chunk order on the client, so the result never depends on the scheduler.
        return np.sum(partials, axis=0)

    def _labels(self, X):
        if isinstance(X, da.Array):
            return X.map_blocks(nearest_center_labels, centers=self.cluster_centers_,
                                drop_axis=1, dtype=np.int64,
                                meta=np.empty((0,), dtype=np.int64))
        return nearest_center_labels(X, self.cluster_centers_)

    def predict(self, X):
        """Index of each row's nearest center.

        Parameters
        ----------
        X : array-like or dask.array.Array of shape (n_samples, n_features)

        Returns
        -------
        ndarray or dask.array.Array of int64, shape (n_samples,)
            A dask array (one task per chunk, on the workers) for dask input.
        """
        check_is_fitted(self)
        return self._labels(check_rows(self, X, reset=False))

    def transform(self, X):
        """Euclidean distance of each row to every center.

        Parameters
        ----------
        X : array-like or dask.array.Array of shape (n_samples, n_features)

        Returns
        -------
        ndarray or dask.array.Array of float64, shape (n_samples, n_clusters)
        """
        check_is_fitted(self)
        X = check_rows(self, X, reset=False)
        if isinstance(X, da.Array):
            return X.map_blocks(center_distances, centers=self.cluster_centers_,
                                chunks=(X.chunks[0], (len(self.cluster_centers_),)),
                                dtype=np.float64, meta=np.empty((0, 0)))
        return center_distances(X, self.cluster_centers_)

    def score(self, X, y=None):
        """Negative exact cost of ``X`` under the fitted centers, as scikit-learn reports it.

        Parameters
        ----------
        X : array-like or dask.array.Array of shape (n_samples, n_features)
        y : ignored

        Returns
        -------
        float
            Minus the sum of squared distances of the rows to their nearest center.
        """
        check_is_fitted(self)
        blocks = as_dask_array(check_rows(self, X, reset=False)).to_delayed().ravel()
        return -float(self._pass(blocks, self.cluster_centers_)[:, -1].sum())

    @property
    def _n_features_out(self):
        """Columns of ``transform``: one distance per center (names ``kmeans0``, ...)."""
        return self.cluster_centers_.shape[0]
