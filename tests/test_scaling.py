"""One pass of moments: the scaler and the PCA it implies, against numpy and scikit-learn."""

import math
import time

import dask.array as da
import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest
from sklearn.decomposition import PCA as SklearnPCA
from sklearn.preprocessing import StandardScaler as SklearnScaler

from sonicatlas.estimators import moments as moments_module
from sonicatlas.estimators.moments import Moments, moments, standardized
from sonicatlas.estimators.scaler import StandardScaler
from sonicatlas.modeling.features import pca_of_scaled, standardize


@pytest.fixture(scope="module")
def rows():
    rng = np.random.default_rng(4)
    # offsets and scales like the audio features' (duration ~2e5 ms, tempo ~120), where
    # E[x^2] - E[x]^2 would lose digits
    X = rng.normal(size=(20_000, 5)) @ rng.normal(size=(5, 5))
    X = X * [6e4, 30, 0.2, 5, 1] + [2.3e5, 120, 0.5, -7, 0]
    X[:, 4] = 3.0  # a constant feature
    return X


def test_moments_equal_numpys_with_empty_and_uneven_blocks(rows):
    chunks = ((0, 3_000, 1, 9_999, 0, 7_000), (5,))
    stats = moments(da.from_array(rows, chunks=chunks))
    assert stats.n == len(rows)
    np.testing.assert_allclose(stats.mean, rows.mean(axis=0), rtol=1e-13)
    np.testing.assert_allclose(stats.cross / (len(rows) - 1), np.cov(rows, rowvar=False),
                               rtol=1e-10, atol=1e-12)


def test_moments_of_a_block_in_tiles_equal_numpys(rows, monkeypatch):
    monkeypatch.setattr(moments_module, "_TILE", 3_000)  # 7 tiles, the last one short
    for block in (rows, rows.astype(np.float32), np.asfortranarray(rows), rows[::3]):
        stats = Moments.of(block)
        centred = block.astype(np.float64) - block.astype(np.float64).mean(axis=0)
        exact = np.array([math.fsum(column) for column in block.T.astype(np.float64)])
        np.testing.assert_allclose(stats.mean, exact / len(block), rtol=1e-13)
        np.testing.assert_allclose(stats.cross, centred.T @ centred, rtol=1e-10, atol=1e-6)


@pytest.mark.parametrize("layout", ["C", "F", "strided"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_standardized_rows_are_numpys_bit_for_bit(rows, layout, dtype):
    block = {"C": rows, "F": np.asfortranarray(rows), "strided": rows[::2, 1:]}[layout]
    block = block.astype(dtype, order="K")
    mean, scale = block.mean(axis=0) + 0.1, block.std(axis=0) + 1.0
    expected = ((block.astype(np.float64) - mean) / scale).astype(np.float32)
    np.testing.assert_array_equal(standardized(block, mean, scale), expected)


def test_scaler_matches_scikit_learns(rows):
    ours = StandardScaler().fit(da.from_array(rows, chunks=(4_000, -1)))
    reference = SklearnScaler().fit(rows)
    np.testing.assert_allclose(ours.mean_, reference.mean_, rtol=1e-13)
    np.testing.assert_allclose(ours.var_, reference.var_, rtol=1e-10)
    np.testing.assert_array_equal(ours.scale_[4], 1.0)  # constant: scale 1, as scikit-learn
    np.testing.assert_allclose(ours.scale_, reference.scale_, rtol=1e-10)
    scaled = ours.transform(da.from_array(rows, chunks=(4_000, -1)))
    assert scaled.dtype == np.float32
    np.testing.assert_allclose(scaled.compute(), reference.transform(rows), rtol=1e-6,
                               atol=1e-6)


def test_pca_from_the_scalers_moments_matches_scikit_learns_on_scaled_rows(rows):
    scaler = StandardScaler().fit(da.from_array(rows, chunks=(4_000, -1)))
    ours = pca_of_scaled(scaler)
    reference = SklearnPCA().fit(SklearnScaler().fit_transform(rows))
    np.testing.assert_allclose(ours.explained_variance_, reference.explained_variance_,
                               rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(ours.explained_variance_ratio_,
                               reference.explained_variance_ratio_, atol=1e-10)
    # the constant feature leaves a zero-variance direction whose sign is arbitrary
    np.testing.assert_allclose(ours.components_[:4], reference.components_[:4], atol=1e-8)


def test_standardize_persists_the_scaled_float32_matrix_with_known_chunks(rows):
    frame = dd.from_pandas(pd.DataFrame(rows, columns=list("abcde")), npartitions=3)
    scaler, scaled = standardize(frame, ("a", "b", "c", "d", "e"))
    assert not np.isnan(scaled.shape[0]) and scaled.chunks[0] == tuple(
        frame.map_partitions(len).compute())
    expected = SklearnScaler().fit_transform(rows.astype(np.float32).astype(np.float64))
    np.testing.assert_allclose(scaled.compute(), expected, rtol=1e-5, atol=1e-5)
    assert scaler.n_samples_seen_ == len(rows)


def test_scaled_on_demand_is_the_held_matrix_bit_for_bit_and_holds_nothing(rows):
    from distributed import Client, LocalCluster, wait

    from sonicatlas.estimators.kmeans import KMeans
    from sonicatlas.modeling.engines import engine_named

    names = ("a", "b", "c", "d", "e")
    # the accepted rows' layout: the features as one float32 block, beside other columns
    table = pd.DataFrame(rows.astype(np.float32), columns=list(names)).assign(
        _pos=np.arange(len(rows)))
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                      dashboard_address="127.0.0.1:0") as cluster, Client(cluster) as client:
        frame = dd.from_pandas(table, npartitions=4).persist()
        wait(frame)

        def held_keys() -> int:
            # once the results just gathered are released (which the scheduler does soon after)
            for _ in range(50):
                count = sum(client.run(lambda dask_worker: len(dask_worker.data)).values())
                if count <= 4:
                    break
                time.sleep(0.1)
            return count

        assert held_keys() == 4
        scaler, lean = standardize(frame, names, hold=False)
        assert lean.chunks[0] == tuple(frame.map_partitions(len).compute())
        lean_fit = KMeans(3, random_state=1).fit(lean)
        lean_values = lean.compute()
        assert held_keys() == 4  # nothing but the rows themselves was left on the workers
        _, held = standardize(frame, names)
        wait(held)
        assert held_keys() == 8
        np.testing.assert_array_equal(lean_values, held.compute())
        np.testing.assert_allclose(lean_values, SklearnScaler().fit_transform(
            rows.astype(np.float32).astype(np.float64)), rtol=1e-5, atol=1e-5)
        held_fit = KMeans(3, random_state=1).fit(held)
        np.testing.assert_array_equal(lean_fit.cluster_centers_, held_fit.cluster_centers_)
        assert lean_fit.inertia_ == held_fit.inertia_
        # dask-ml's scaler, on demand too
        engine = engine_named("dask-ml")
        _, lean = engine.scale(frame, names, hold=False)
        _, held = engine.scale(frame, names)
        np.testing.assert_allclose(lean.compute(), held.compute(), rtol=1e-12, atol=1e-12)
