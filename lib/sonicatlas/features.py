"""The feature matrix: accepted rows as a chunked array, scaled, float32, persisted once."""

from __future__ import annotations

import dask.array as da
import dask.dataframe as dd
import numpy as np
from dask_ml.preprocessing import StandardScaler


def feature_matrix(accepted: dd.DataFrame, features: tuple[str, ...]) -> da.Array:
    """Lazy float64 array of the features, one chunk per partition, with known chunk sizes.

    ``accepted`` must not come straight from ``read_parquet`` with a column subset
    (dask/dask#12411); the checked frame is a ``map_partitions`` result, which is safe.
    """
    # Lengths from their own small graph: `lengths=True` re-submits the values graph under the
    # same keys with another shape, which the scheduler warns can deadlock.
    lengths = tuple(int(n) for n in accepted.map_partitions(len).compute())
    return accepted[list(features)].to_dask_array(lengths=lengths).astype(np.float64)


def fit_scaler(X: da.Array) -> StandardScaler:
    """dask-ml's StandardScaler fitted in one pass over ``X`` (float64 statistics)."""
    return StandardScaler().fit(X)


def scale(X: da.Array, scaler: StandardScaler) -> da.Array:
    """Lazy scaled matrix in float32: half the memory, and costs agree to ~1e-7 relative."""
    return scaler.transform(X).astype(np.float32)


def scaler_parameters(scaler: StandardScaler, features: tuple[str, ...]) -> dict:
    """The scaler as plain data for ``model/scaler.json``."""
    return {
        "features": list(features),
        "mean": np.asarray(scaler.mean_, dtype=float).tolist(),
        "scale": np.asarray(scaler.scale_, dtype=float).tolist(),
    }
