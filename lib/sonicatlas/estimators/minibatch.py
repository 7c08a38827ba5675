"""Mini-batch KMeans streamed over the chunks of a dask array, one chunk on the client at a time.

See :mod:`sonicatlas.estimators.sampled` for the conventions every clustering method shares.
"""

from __future__ import annotations

from functools import partial

import numpy as np
from sklearn.cluster import MiniBatchKMeans as SklearnMiniBatchKMeans
from sklearn.cluster import kmeans_plusplus
from threadpoolctl import threadpool_limits

from sonicatlas.estimators.lloyd import nearest_center_labels, nearest_centers
from sonicatlas.estimators.sampled import SampledClusterer, draw_sample


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
    random_state : int, numpy.random.RandomState or None, default=0
        Seed of the sample, the seedings and the shuffles; a ``RandomState`` gives one seed
        drawn from it, None a fresh one.

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
    labels_ : ndarray or dask.array.Array of int64, shape (n_samples,)
        Label of every fitted row, as ``predict`` gives it: lazy for dask input.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Column names, when fitted on a pandas DataFrame.

    Notes
    -----
    numpy and dask input: see :class:`sonicatlas.estimators.sampled.SampledClusterer`.
    """

    def __init__(self, n_clusters=8, *, batch_size=1024, max_epochs=3, n_init=3,
                 init_sample_size=100_000, random_state=0):
        self.n_clusters = n_clusters
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.n_init = n_init
        self.init_sample_size = init_sample_size
        self.random_state = random_state

    def _fit_rows(self, X, seed):
        """Seed on a sample, then ``max_epochs`` streamed passes over every chunk."""
        if self.max_epochs < 1 or self.n_init < 1:
            raise ValueError(f"max_epochs and n_init must be >= 1; got {self.max_epochs} "
                             f"and {self.n_init}")
        sample = draw_sample(X, self.init_sample_size, seed, self.n_clusters)
        model = SklearnMiniBatchKMeans(
            self.n_clusters, init=self._seed(sample, seed), n_init=1,
            batch_size=self.batch_size, compute_labels=False, random_state=seed)
        blocks = X.to_delayed().ravel()
        # A step on ~1000 rows is too small to share: OpenMP threads only add synchronisation,
        # which on a busy host costs far more than the step.
        with threadpool_limits(1, user_api="openmp"):
            for epoch in range(self.max_epochs):
                for index, block in enumerate(blocks):
                    rows = np.asarray(block.compute())
                    # Catalog chunks may be sorted (by genre, by year): shuffle within each.
                    order = np.random.default_rng([seed, epoch, index]).permutation(len(rows))
                    for first in range(0, len(rows), self.batch_size):
                        model.partial_fit(rows[order[first:first + self.batch_size]])
        self.model_ = model
        self.cluster_centers_ = model.cluster_centers_.astype(np.float64)
        self.n_clusters_ = self.n_clusters
        self.n_steps_ = model.n_steps_
        self.n_iter_ = self.max_epochs
        self.sample_size_ = int(X.shape[0])
        self.fitted_on_sample_ = False

    def _seed(self, sample: np.ndarray, seed: int) -> np.ndarray:
        best, best_cost = None, np.inf
        for start in np.random.SeedSequence(seed).generate_state(self.n_init):
            centers, _ = kmeans_plusplus(sample, self.n_clusters, random_state=int(start))
            cost = nearest_centers(sample, centers)[1].sum()
            if cost < best_cost:
                best, best_cost = centers, cost
        return best

    def _labeler(self):
        return partial(nearest_center_labels, centers=self.cluster_centers_)
