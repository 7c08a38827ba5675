"""PCA of a tall, narrow feature matrix from its d x d covariance.

scikit-learn's ``covariance_eigh`` solver, distributed: one pass of
:mod:`sonicatlas.estimators.moments` (each chunk returns d x d numbers), then an
eigendecomposition on the client; or no pass at all, from a covariance already known
(:meth:`PCA.fit_covariance`, e.g. the scaler's). ``dask_ml.decomposition.PCA`` with ``tsqr``
takes passes of its own (docs/benchmarks.md), and its ``randomized`` solver is approximate.
"""

from __future__ import annotations

import dask.array as da
import numpy as np
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils.extmath import svd_flip
from sklearn.utils.validation import check_is_fitted

from sonicatlas.estimators.conventions import check_rows
from sonicatlas.estimators.moments import moments


class PCA(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Principal components of a dask or numpy array, exact in float64.

    Parameters
    ----------
    n_components : int or None, default=None
        Components kept; None keeps all features.

    Attributes
    ----------
    mean_ : ndarray of shape (n_features,)
    components_ : ndarray of shape (n_components, n_features)
        Unit loadings, signed as scikit-learn signs them (largest loading positive).
    n_components_ : int
    explained_variance_ : ndarray of shape (n_components,)
    explained_variance_ratio_ : ndarray of shape (n_components,)
    covariance_ : ndarray of shape (n_features, n_features)
        Sample covariance of the input (the correlation matrix when the input is standardised).
    n_samples_ : int
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Column names, when fitted on a pandas DataFrame.

    Notes
    -----
    scikit-learn's ``PCA(svd_solver="covariance_eigh")``: the same components (up to
    rounding) and signs. ``transform`` computes in float64 and returns float64 for numpy
    input; for a dask array it returns float32 blocks, half the memory of a tall matrix. A
    dask input may have unknown chunk sizes; it is not scanned for NaN.
    """

    def __init__(self, n_components=None):
        self.n_components = n_components

    def fit(self, X, y=None):
        """The components of ``X``, from one pass of moments.

        Parameters
        ----------
        X : array-like or dask.array.Array of shape (n_samples, n_features)
        y : ignored

        Returns
        -------
        self
        """
        X = check_rows(self, X, reset=True, min_samples=2)
        self._check_components(X.shape[1])
        stats = moments(X if isinstance(X, da.Array) else da.from_array(X))
        if stats.n < 2:  # a dask array of unknown length
            raise ValueError(f"PCA needs at least 2 rows (n_samples={stats.n})")
        return self.fit_covariance(stats.cross / (stats.n - 1), stats.mean, stats.n)

    def _check_components(self, d: int) -> int:
        k = d if self.n_components is None else self.n_components
        if not 1 <= k <= d:
            raise ValueError(f"n_components={k} must be between 1 and {d}")
        return k

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
        k = self._check_components(d)
        eigenvalues, eigenvectors = np.linalg.eigh(covariance)
        order = np.argsort(eigenvalues)[::-1]
        variances = np.maximum(eigenvalues[order], 0.0)
        _, components = svd_flip(None, eigenvectors[:, order].T.copy(), u_based_decision=False)
        self.mean_ = np.asarray(mean, dtype=np.float64)
        self.covariance_ = covariance
        self.components_ = components[:k]
        self.n_components_ = k
        self.explained_variance_ = variances[:k]
        self.explained_variance_ratio_ = variances[:k] / variances.sum()
        self.n_samples_ = n_samples
        self.n_features_in_ = d
        return self

    def transform(self, X):
        """Project onto the components: ``(X - mean_) @ components_.T`` in float64.

        Parameters
        ----------
        X : array-like or dask.array.Array of shape (n_samples, n_features)

        Returns
        -------
        ndarray of float64, or dask.array.Array of float32, shape (n_samples, n_components)
        """
        check_is_fitted(self)
        X = check_rows(self, X, reset=False)
        if isinstance(X, da.Array):
            return X.map_blocks(projected, self.mean_, self.components_,
                                chunks=(X.chunks[0], (len(self.components_),)),
                                dtype=np.float32)
        return (np.asarray(X, dtype=np.float64) - self.mean_) @ self.components_.T

    @property
    def _n_features_out(self):
        """Columns of ``transform`` (names ``pca0``, ``pca1``, ...)."""
        return self.components_.shape[0]


def projected(block: np.ndarray, mean: np.ndarray, components: np.ndarray) -> np.ndarray:
    """``(block - mean) @ components.T`` in float64, as float32: a dask chunk's projection."""
    return ((block.astype(np.float64) - mean) @ components.T).astype(np.float32)
