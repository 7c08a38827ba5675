"""PCA against scikit-learn's on the same matrix."""

import dask.array as da
import numpy as np
import pytest
from sklearn.decomposition import PCA as SklearnPCA

from sonicatlas.estimators.pca import PCA


@pytest.fixture(scope="module")
def correlated():
    rng = np.random.default_rng(0)
    mixing = rng.normal(size=(8, 8))
    return rng.normal(size=(30_000, 8)) @ mixing + rng.normal(size=8) * 5


def test_explained_variance_ratio_matches_sklearn(correlated):
    ours = PCA().fit(da.from_array(correlated, chunks=(7_000, -1)))
    reference = SklearnPCA().fit(correlated)
    # both are float64 eigendecompositions of the same covariance: equal to rounding
    np.testing.assert_allclose(ours.explained_variance_ratio_,
                               reference.explained_variance_ratio_, rtol=1e-10)
    np.testing.assert_allclose(ours.explained_variance_, reference.explained_variance_,
                               rtol=1e-10)


def test_components_and_projection_match_sklearn(correlated):
    ours = PCA(n_components=3).fit(da.from_array(correlated, chunks=(7_000, -1)))
    reference = SklearnPCA(n_components=3).fit(correlated)
    np.testing.assert_allclose(ours.components_, reference.components_, atol=1e-10)
    # the projection of numpy input is rounded through float32: one rounding, 2**-24 relative
    np.testing.assert_allclose(ours.transform(correlated[:100]),
                               reference.transform(correlated[:100]),
                               rtol=np.finfo(np.float32).eps, atol=0)


def test_too_many_components_is_an_error(correlated):
    with pytest.raises(ValueError, match="n_components"):
        PCA(n_components=9).fit(correlated)
