"""Engines: what scales, projects and clusters the feature matrix (``engine:`` in the config).

``sonicatlas`` (the default) uses the job's own estimators: one pass of moments gives the scaler
and the PCA, and KMeans runs compiled Lloyd passes. ``dask-ml`` uses
``dask_ml.preprocessing.StandardScaler``, ``dask_ml.decomposition.PCA`` and
``dask_ml.cluster.KMeans``, steered around their traps: the PCA uses the exact ``tsqr`` solver
(never the approximate ``randomized`` one) and takes scikit-learn's signs; KMeans starts from
the job's own sampled k-means++ centres (``k-means||`` is slow and its result depends on the
seed) with the job's tolerance; and the cost reported is the exact squared one, from one pass
of the job's kernels (dask-ml's ``inertia_`` is not). Both give the same attributes to the
rest of the job, so the run directory is the same either way. ``k: auto``, ``algorithm`` and
``compare`` use the job's sweep and methods on the engine's scaled matrix; with ``k: auto``
the engine's KMeans is then fitted at the k the sweep chose.
"""

from __future__ import annotations

import time

import dask.array as da
import dask.dataframe as dd
import numpy as np
from sklearn.utils.extmath import svd_flip

from sonicatlas.config import KMeansConfig
from sonicatlas.estimators.arrays import as_dask_array
from sonicatlas.estimators.kmeans import KMeans, seed_centers
from sonicatlas.modeling import features
from sonicatlas.runtime import show_progress


class DaskMLKMeans(KMeans):
    """``dask_ml.cluster.KMeans`` from the job's sampled k-means++ centres, with the exact cost.

    The parameters, attributes, ``predict`` and ``transform`` are those of
    :class:`sonicatlas.estimators.kmeans.KMeans`; only the Lloyd iterations over every row are
    dask-ml's. ``n_iter_`` counts dask-ml's iterations; ``inertia_`` and ``cluster_sizes_``
    come from one pass of the job's kernels over the final centres.
    """

    def fit(self, X, y=None):
        from dask_ml.cluster import KMeans as DaskKMeans

        start = time.perf_counter()
        X = as_dask_array(X)
        centers, tol, _ = seed_centers(X, self.n_clusters, self.n_init,
                                       self.init_sample_size, self.random_state, self.tol)
        # dask-ml's tol is absolute on the squared centre shift: the job's relative tol made
        # absolute, as the job's own KMeans does
        fitted = DaskKMeans(self.n_clusters, init=centers, max_iter=self.max_iter, tol=tol,
                            random_state=self.random_state).fit(X)
        self.cluster_centers_ = np.asarray(fitted.cluster_centers_, dtype=np.float64)
        # its inertia_ sums unsquared distances: the exact cost is one pass of the job's
        # kernels (dask-ml's labels_ are not kept: they would hold the scaled matrix)
        stats = self._pass(X.to_delayed().ravel(), self.cluster_centers_)
        self.cluster_sizes_ = stats[:, -2].astype(np.int64)
        self.inertia_ = float(stats[:, -1].sum())
        self.n_iter_ = int(fitted.n_iter_)
        self.n_features_in_ = X.shape[1]
        self.n_clusters_ = self.n_clusters
        self.fitted_on_sample_ = False
        self.sample_size_ = int(X.shape[0])
        self.fit_seconds_ = time.perf_counter() - start
        return self


class Engine:
    """The job's own estimators: scaler and PCA from one pass of moments, compiled KMeans."""

    name = "sonicatlas"
    kmeans_class = KMeans

    def scale(self, frame: dd.DataFrame, columns: tuple[str, ...], hold: bool = True):
        """Fit the scaler on ``frame[columns]``; return it and the scaled matrix, persisted
        (``hold``) or scaled again on each pass (:func:`~sonicatlas.modeling.features
        .standardize`)."""
        return features.standardize(frame, columns, hold)

    def project(self, scaler, scaled: da.Array):
        """The PCA of the scaled matrix."""
        return features.pca_of_scaled(scaler)

    def kmeans(self, k: int, config: KMeansConfig, seed: int) -> KMeans:
        """An unfitted KMeans with the config's settings."""
        return self.kmeans_class(k, n_init=config.n_init, max_iter=config.max_iter,
                                 init_sample_size=config.init_sample_size, tol=config.tol,
                                 random_state=seed)

    def refit(self, kmeans: KMeans, scaled: da.Array, config: KMeansConfig,
              seed: int) -> KMeans:
        """The run's KMeans at the k a sweep of the job's KMeans chose: that fit itself."""
        return kmeans


class DaskMLEngine(Engine):
    """dask-ml's StandardScaler, PCA (tsqr) and KMeans (from the job's sampled centres)."""

    name = "dask-ml"
    kmeans_class = DaskMLKMeans

    def scale(self, frame, columns, hold=True):
        from dask_ml.preprocessing import StandardScaler

        if not hold:
            X = features.held_matrix(frame, columns, np.float64)
            scaler = StandardScaler().fit(X)
            return scaler, scaler.transform(X)
        # float64, as dask-ml computes; the chunk sizes are read from the persisted chunks
        # (see features.standardize for why not up front)
        X = frame[list(columns)].to_dask_array().astype(np.float64)
        scaler = StandardScaler().fit(X)
        scaled = scaler.transform(X).persist()
        show_progress(scaled)
        scaled.compute_chunk_sizes()
        return scaler, scaled

    def project(self, scaler, scaled):
        from dask_ml.decomposition import PCA

        # 'tsqr': the exact SVD through a tall-and-skinny QR, one pass ('auto' may pick the
        # approximate 'randomized' solver, whose variances are not scikit-learn's to 1e-6)
        pca = PCA(svd_solver="tsqr").fit(scaled)
        # dask-ml leaves mean_ a lazy dask array; the model holds plain numbers
        pca.mean_ = np.asarray(pca.mean_.compute(), dtype=np.float64)
        # the signs scikit-learn's PCA (and the job's) gives, largest loading positive, so that
        # both engines draw the map the same way round; dask-ml leaves them to dask's SVD
        _, pca.components_ = svd_flip(None, pca.components_, u_based_decision=False)
        # the summaries' feature correlation: every component kept, so this is the sample
        # covariance of the scaled matrix exactly (the job's PCA keeps it as covariance_)
        pca.covariance_ = pca.get_covariance()
        return pca

    def refit(self, kmeans, scaled, config, seed):
        """dask-ml's KMeans at the k the sweep (of the job's KMeans) chose."""
        return self.kmeans(kmeans.n_clusters, config, seed).fit(scaled)


ENGINES = {engine.name: engine for engine in (Engine(), DaskMLEngine())}


def engine_named(name: str) -> Engine:
    """The engine the config names (``sonicatlas`` or ``dask-ml``)."""
    return ENGINES[name]
