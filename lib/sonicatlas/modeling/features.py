"""The feature matrix: accepted rows standardised in two passes, float32, persisted once."""

from __future__ import annotations

import dask.array as da
import dask.dataframe as dd
import numpy as np

from sonicatlas.estimators.pca import PCA
from sonicatlas.estimators.scaler import StandardScaler
from sonicatlas.runtime import show_progress


def standardize(frame: dd.DataFrame, features: tuple[str, ...]
                ) -> tuple[StandardScaler, da.Array]:
    """Fit the scaler and persist the scaled matrix: two passes over ``frame``.

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
    X = frame[list(features)].to_dask_array().astype(np.float32)
    scaler = StandardScaler().fit(X)
    scaled = scaler.transform(X).persist()
    show_progress(scaled)
    scaled.compute_chunk_sizes()
    return scaler, scaled


def pca_of_scaled(scaler: StandardScaler) -> PCA:
    """The PCA of the scaled matrix, from the scaler's moments: no pass over the data."""
    return PCA().fit_covariance(scaler.scaled_covariance_, np.zeros(scaler.n_features_in_),
                                scaler.n_samples_seen_)
