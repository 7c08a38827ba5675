"""The feature matrix: accepted rows standardised, float32, persisted once or scaled on each
pass from the held features."""

from __future__ import annotations

import dask
import dask.array as da
import dask.dataframe as dd
import numpy as np
import pandas as pd

from sonicatlas import persisted
from sonicatlas.estimators.pca import PCA
from sonicatlas.estimators.scaler import StandardScaler
from sonicatlas.runtime import show_progress


def standardize(frame: dd.DataFrame, features: tuple[str, ...], hold: bool = True
                ) -> tuple[StandardScaler, da.Array]:
    """Fit the scaler and persist the scaled matrix: two passes over ``frame``.

    With ``hold=False`` the scaled matrix is not persisted: each pass over it scales the
    persisted ``frame``'s features again (:func:`held_matrix`), the same bits chunk for chunk.
    A catalog too large to hold twice then holds its features once (40 bytes a row fewer),
    for ~40 ms of a core per million rows on each KMeans pass (docs/benchmarks.md, "Scale").

    The first pass gathers the moments (:class:`sonicatlas.estimators.scaler.StandardScaler`), the
    second writes the scaled float32 matrix, one chunk per partition. float32 keeps 7
    significant digits, far finer than the features are measured. The chunk sizes are read
    from the persisted chunks: asking dask for them up front (``lengths=True`` or a separate
    ``len`` pass) planned the same array keys twice, once fused back to ``read_parquet``
    (dask/dask#12411, #12488), which re-reads the input and makes the scheduler warn of
    deadlocks.

    Returns
    -------
    scaler : StandardScaler
    scaled : dask.array.Array
        Persisted, chunk sizes known.
    """
    if not hold:
        X = held_matrix(frame, features, np.float32)
        scaler = StandardScaler().fit(X)
        return scaler, scaler.transform(X)
    X = frame[list(features)].to_dask_array().astype(np.float32)
    scaler = StandardScaler().fit(X)
    scaled = scaler.transform(X).persist()
    show_progress(scaled)
    scaled.compute_chunk_sizes()
    return scaler, scaled


def held_matrix(frame: dd.DataFrame, features: tuple[str, ...], dtype) -> da.Array:
    """``frame[features]`` as a dask array of ``dtype``, one chunk per partition, read from the
    persisted partitions themselves (:func:`sonicatlas.persisted.partitions`), chunk sizes
    known; nothing of it is held, so each computation reads the partitions again."""
    parts = persisted.partitions(frame)
    names = list(features)
    lengths = dask.compute(*(dask.delayed(len)(part) for part in parts))
    return da.concatenate([
        da.from_delayed(dask.delayed(_columns)(part, names, dtype), shape=(n, len(names)),
                        dtype=dtype, meta=np.empty((0, 0), dtype=dtype))
        for part, n in zip(parts, lengths, strict=True)])


def _columns(frame: pd.DataFrame, names: list[str], dtype) -> np.ndarray:
    # a view of the held float32 block where the dtype matches, as to_dask_array gives
    return frame[names].to_numpy(dtype=dtype)


def pca_of_scaled(scaler: StandardScaler) -> PCA:
    """The PCA of the scaled matrix, from the scaler's moments: no pass over the data."""
    return PCA().fit_covariance(scaler.scaled_covariance_, np.zeros(scaler.n_features_in_),
                                scaler.n_samples_seen_)
