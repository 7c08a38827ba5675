"""Standardisation from one pass of moments, which also give the covariance for the PCA.

dask-ml's ``StandardScaler`` makes its own pass for the mean and variance, and a PCA then
needs two more (mean, centred Gram). Here one pass of :mod:`sonicatlas.estimators.moments` gives the
scaler's mean and scale and the covariance of the scaled matrix, so scaling + PCA reads the
data twice: once for the moments, once to write the scaled matrix (docs/benchmarks.md).
"""

from __future__ import annotations

import dask.array as da
import numpy as np
from sklearn.base import BaseEstimator, OneToOneFeatureMixin, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from sonicatlas.estimators.conventions import check_rows
from sonicatlas.estimators.moments import moments, standardized


class StandardScaler(OneToOneFeatureMixin, TransformerMixin, BaseEstimator):
    """Zero mean and unit variance per feature, fitted in one pass of moments.

    The same statistics as scikit-learn's ``StandardScaler`` (population variance; a
    constant feature gets scale 1). It has no parameters: it always centres and scales.

    Attributes
    ----------
    mean_, var_, scale_ : ndarray of shape (n_features,)
    n_samples_seen_ : int
    covariance_ : ndarray of shape (n_features, n_features)
        Sample covariance (``n - 1``) of the input.
    scaled_covariance_ : ndarray of shape (n_features, n_features)
        Sample covariance of the scaled input: what
        :meth:`sonicatlas.estimators.pca.PCA.fit_covariance` takes, so a PCA of the scaled
        matrix needs no pass of its own.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Column names, when fitted on a pandas DataFrame.

    Notes
    -----
    ``transform`` of a dask array gives float32 blocks: half the memory, and clustering costs
    agree to ~1e-7 relative (docs/benchmarks.md). numpy input gives float64. A dask input may
    have unknown chunk sizes; it is not scanned for NaN.
    """

    def fit(self, X, y=None):
        """Mean and scale of every feature (and the covariance), in one pass.

        Parameters
        ----------
        X : array-like or dask.array.Array of shape (n_samples, n_features)
        y : ignored

        Returns
        -------
        self
        """
        stats = moments(check_rows(self, X, reset=True))
        if stats.n == 0:
            raise ValueError("StandardScaler needs at least one row")
        var = np.diag(stats.cross) / stats.n
        # a constant feature gets scale 1, by scikit-learn's test (_is_constant_feature)
        eps = np.finfo(np.float64).eps
        constant = var <= stats.n * eps * var + (stats.n * stats.mean * eps) ** 2
        scale = np.where(constant, 1.0, np.sqrt(var))
        self.mean_, self.var_, self.scale_, self.n_samples_seen_ = stats.mean, var, scale, stats.n
        self.covariance_ = stats.cross / max(stats.n - 1, 1)
        self.scaled_covariance_ = self.covariance_ / np.outer(scale, scale)
        return self

    def transform(self, X):
        """``(X - mean_) / scale_``.

        Parameters
        ----------
        X : array-like or dask.array.Array of shape (n_samples, n_features)

        Returns
        -------
        ndarray of float64, or dask.array.Array of float32
        """
        check_is_fitted(self)
        X = check_rows(self, X, reset=False)
        if isinstance(X, da.Array):
            # a plain function and two arrays: the workers need not import scikit-learn
            return X.map_blocks(standardized, self.mean_, self.scale_, dtype=np.float32)
        return (np.asarray(X, dtype=np.float64) - self.mean_) / self.scale_
