"""What every estimator shares to follow scikit-learn's rules: input checks, seeds, labels.

numpy input (and lists, pandas frames) goes through scikit-learn's own ``validate_data``, so
the errors and attributes are scikit-learn's. A dask array gets the checks that need no pass
over the data (shape, dtype, features; never NaN, which would mean reading every chunk).
"""

from __future__ import annotations

import numbers

import dask.array as da
import dask.dataframe as dd
import numpy as np
from sklearn.utils import check_random_state
from sklearn.utils.validation import validate_data


def seed_of(random_state) -> int:
    """The integer seed a fit draws everything from.

    An int is its own seed, so an int gives the same results as it always has. ``None``
    draws a seed from numpy's global generator and a ``numpy.random.RandomState`` draws one
    from itself, as scikit-learn's estimators consume their generator: the same state gives
    the same fit.
    """
    generator = check_random_state(random_state)  # scikit-learn's errors for bad values
    if isinstance(random_state, numbers.Integral):
        return int(random_state)
    return int(generator.randint(np.iinfo(np.int32).max))


def check_rows(estimator, X, *, reset: bool, min_samples: int = 1, known_rows: bool = False):
    """``X`` checked as a matrix of rows for ``estimator``; sets ``n_features_in_`` on reset.

    Parameters
    ----------
    estimator : BaseEstimator
    X : array-like, pandas.DataFrame or dask.array.Array
    reset : bool
        True in ``fit`` (records ``n_features_in_`` and, for a DataFrame,
        ``feature_names_in_``); False afterwards (checks them).
    min_samples : int
        Rows the method needs.
    known_rows : bool
        Whether a dask array must know its number of rows (the methods that sample need it).

    Returns
    -------
    numpy.ndarray or dask.array.Array
        A float32 or float64 ndarray (other numbers become float64), or the dask array with
        all its columns in one chunk.
    """
    if isinstance(X, dd.DataFrame | dd.Series):
        raise TypeError(f"{type(estimator).__name__} takes a dask array, not a dask DataFrame: "
                        "pass frame.to_dask_array(lengths=True)")
    if not isinstance(X, da.Array):
        return validate_data(estimator, X, reset=reset, dtype=[np.float64, np.float32],
                             ensure_min_samples=min_samples)
    return _check_dask(estimator, X, reset, min_samples, known_rows)


def _check_dask(estimator, X: da.Array, reset: bool, min_samples: int, known_rows: bool):
    name = type(estimator).__name__
    if X.ndim != 2:
        raise ValueError(f"{name} expects a 2D array of rows and features; got a dask array "
                         f"of shape {X.shape}")
    if X.dtype.kind not in "biuf":
        raise ValueError(f"{name} needs numbers; got a dask array of dtype {X.dtype}")
    n_rows, n_features = X.shape
    if reset:
        if n_features < 1:
            raise ValueError(f"Found array with 0 feature(s) (shape={X.shape}) while a "
                             f"minimum of 1 is required by {name}.")
        estimator.n_features_in_ = n_features
        if hasattr(estimator, "feature_names_in_"):
            del estimator.feature_names_in_  # a dask array has no column names
    elif n_features != estimator.n_features_in_:
        raise ValueError(f"X has {n_features} features, but {name} is expecting "
                         f"{estimator.n_features_in_} features as input.")
    if known_rows and np.isnan(n_rows):
        raise ValueError(f"{name} needs the number of rows of X; call "
                         "X.compute_chunk_sizes() first")
    if not np.isnan(n_rows) and n_rows < min_samples:
        raise ValueError(f"Found array with {n_rows} sample(s) (shape={X.shape}) while a "
                         f"minimum of {min_samples} is required by {name}.")
    # every chunk must hold whole rows: the passes work a chunk of rows at a time
    return X.rechunk({1: -1}) if X.numblocks[1] > 1 else X


class LabelsMixin:
    """``labels_`` that stays on the cluster: a dask ``labels_`` is left out of pickles.

    For dask input ``labels_`` is a lazy dask array over the data of the fit; a pickle of it
    would carry that graph (and its persisted chunks) wherever the estimator travels, e.g. to
    the workers that label new rows. An unpickled copy has every other fitted attribute.
    """

    def __getstate__(self):
        state = super().__getstate__()
        if isinstance(state.get("labels_"), da.Array):
            state = {key: value for key, value in state.items() if key != "labels_"}
        return state
