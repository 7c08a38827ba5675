"""Array helpers every estimator shares: dask input, reproducible row samples."""

from __future__ import annotations

import dask
import dask.array as da
import numpy as np

from sonicatlas.estimators.lloyd import concatenate_samples, sample_block


def as_dask_array(X) -> da.Array:
    """``X`` unchanged if it is a dask array, else wrapped in chunks of 1M rows."""
    return X if isinstance(X, da.Array) else da.from_array(np.asarray(X), chunks=(1_000_000, -1))


def as_rows(X) -> da.Array:
    """``X`` as a dask array with all columns in one block, so every chunk holds whole rows."""
    X = as_dask_array(X)
    return X.rechunk({1: -1}) if X.numblocks[1] > 1 else X


def sample_rows(X: da.Array, size: int, seed: int) -> np.ndarray:
    """About ``size`` rows drawn uniformly from every chunk, reproducibly for a seed."""
    return np.asarray(dask.compute(delayed_sample(X, size, seed))[0])


def delayed_sample(X: da.Array, size: int, seed: int):
    """:func:`sample_rows` as one delayed float64 array, made where the chunks are."""
    fraction = min(1.0, size / max(X.shape[0], 1))
    blocks = X.to_delayed().ravel()
    parts = [dask.delayed(sample_block)(b, seed, i, fraction) for i, b in enumerate(blocks)]
    return dask.delayed(concatenate_samples)(parts)
