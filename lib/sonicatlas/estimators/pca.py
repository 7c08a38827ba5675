"""PCA of a tall, narrow feature matrix from its d x d covariance.

scikit-learn's ``covariance_eigh`` solver, distributed: one pass of
:mod:`sonicatlas.estimators.moments` (each chunk returns d x d numbers), then an
eigendecomposition on the client; or no pass at all, from a covariance already known
(:meth:`PCA.fit_covariance`, e.g. the scaler's). ``dask_ml.decomposition.PCA`` with ``tsqr``
takes passes of its own (docs/benchmarks.md), and its ``randomized`` solver fails on
scikit-learn >= 1.8.
"""

from __future__ import annotations

import dask.array as da
import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.extmath import svd_flip

from sonicatlas.estimators.moments import moments


class PCA(TransformerMixin, BaseEstimator):
    """Principal components of a dask or numpy array, exact in float64.

    Parameters
    ----------
    n_components : int, optional
        Components kept; default all features.

    Attributes
    ----------
    mean_ : ndarray of shape (n_features,)
    components_ : ndarray of shape (n_components, n_features)
        Unit loadings, signed as scikit-learn signs them (largest loading positive).
    explained_variance_ : ndarray of shape (n_components,)
    explained_variance_ratio_ : ndarray of shape (n_components,)
    covariance_ : ndarray of shape (n_features, n_features)
        Sample covariance of the input (the correlation matrix when the input is standardised).
    n_samples_ : int
    """

    def __init__(self, n_components=None):
        self.n_components = n_components

    def fit(self, X, y=None):
        X = X if isinstance(X, da.Array) else da.from_array(np.asarray(X))
        n, d = X.shape
        if n < 2:
            raise ValueError(f"PCA needs at least 2 rows, got {n}")
        k = d if self.n_components is None else self.n_components
        if not 1 <= k <= d:
            raise ValueError(f"n_components={k} must be between 1 and {d}")
        stats = moments(X)
        return self.fit_covariance(stats.cross / (n - 1), stats.mean, n)

    def fit_covariance(self, covariance, mean, n_samples: int):
        """Fit from the sample covariance and mean of the data, with no pass over it.

        Parameters
        ----------
        covariance : ndarray of shape (n_features, n_features)
            Sample covariance (``n - 1``), e.g. a scaler's ``scaled_covariance_``.
        mean : ndarray of shape (n_features,)
        n_samples : int

        Returns
        -------
        self
        """
        d = len(mean)
        k = d if self.n_components is None else self.n_components
        if not 1 <= k <= d:
            raise ValueError(f"n_components={k} must be between 1 and {d}")
        eigenvalues, eigenvectors = np.linalg.eigh(covariance)
        order = np.argsort(eigenvalues)[::-1]
        variances = np.maximum(eigenvalues[order], 0.0)
        _, components = svd_flip(None, eigenvectors[:, order].T.copy(), u_based_decision=False)
        self.mean_ = np.asarray(mean, dtype=np.float64)
        self.covariance_ = covariance
        self.components_ = components[:k]
        self.explained_variance_ = variances[:k]
        self.explained_variance_ratio_ = variances[:k] / variances.sum()
        self.n_samples_ = n_samples
        self.n_features_in_ = d
        return self

    def transform(self, X):
        """Project onto the components (float32 for dask input, to halve memory)."""
        if isinstance(X, da.Array):
            return X.map_blocks(self._project, chunks=(X.chunks[0], (len(self.components_),)),
                                dtype=np.float32)
        return self._project(np.asarray(X)).astype(np.float64)

    def _project(self, block: np.ndarray) -> np.ndarray:
        return ((block.astype(np.float64) - self.mean_) @ self.components_.T).astype(np.float32)
