"""The estimators used outside the job: dask arrays against scikit-learn, Pipeline, clone, seeds."""

from __future__ import annotations

import pickle

import dask.array as da
import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest
from sklearn import cluster, decomposition, preprocessing
from sklearn.base import clone
from sklearn.datasets import make_blobs
from sklearn.exceptions import NotFittedError
from sklearn.metrics import adjusted_rand_score
from sklearn.pipeline import Pipeline, make_pipeline

from sonicatlas.estimators import PCA, Agglomerative, KMeans, StandardScaler, make_method


@pytest.fixture(scope="module")
def rows():
    """Five blobs in six features of very different scales, correlated through the blobs."""
    X, _ = make_blobs(n_samples=6_000, n_features=6, centers=5, cluster_std=1.5, random_state=11)
    return X * np.array([0.01, 1.0, 3.0, 50.0, 200.0, 1e4]) + np.array([0, 5, -3, 100, 0, 1e5])


@pytest.fixture(scope="module")
def chunked(rows):
    return da.from_array(rows, chunks=(1_300, -1))


def test_scaler_on_a_dask_array_learns_what_scikit_learn_learns(rows, chunked):
    ours = StandardScaler().fit(chunked)
    theirs = preprocessing.StandardScaler().fit(rows)
    np.testing.assert_allclose(ours.mean_, theirs.mean_, rtol=1e-12)
    np.testing.assert_allclose(ours.scale_, theirs.scale_, rtol=1e-12)
    scaled = ours.transform(chunked)
    assert isinstance(scaled, da.Array) and scaled.dtype == np.float32
    # float32 blocks: about 7 significant digits of values of order 1
    np.testing.assert_allclose(scaled.compute(), theirs.transform(rows), rtol=0, atol=1e-6)
    np.testing.assert_allclose(ours.transform(rows), theirs.transform(rows), rtol=1e-12,
                               atol=1e-12)


def test_pca_on_a_dask_array_learns_what_scikit_learn_learns(rows, chunked):
    scaled = preprocessing.StandardScaler().fit_transform(rows)
    ours = PCA(n_components=4).fit(da.from_array(scaled, chunks=(1_300, -1)))
    theirs = decomposition.PCA(n_components=4, svd_solver="full").fit(scaled)
    np.testing.assert_allclose(ours.explained_variance_, theirs.explained_variance_, rtol=1e-10)
    signs = np.sign((ours.components_ * theirs.components_).sum(axis=1))
    np.testing.assert_allclose(ours.components_ * signs[:, None], theirs.components_,
                               atol=1e-10)
    projected = ours.transform(da.from_array(scaled, chunks=(1_300, -1)))
    assert isinstance(projected, da.Array) and projected.dtype == np.float32
    np.testing.assert_allclose(projected.compute(), theirs.transform(scaled) * signs,
                               rtol=0, atol=1e-5)


def test_pca_of_numpy_float64_is_float64_to_1e_10(rows):
    scaled = preprocessing.StandardScaler().fit_transform(rows)
    ours = PCA(n_components=3).fit(scaled)
    theirs = decomposition.PCA(n_components=3, svd_solver="full").fit(scaled)
    signs = np.sign((ours.components_ * theirs.components_).sum(axis=1))
    projected = ours.transform(scaled)
    assert projected.dtype == np.float64
    # float32 rounding would leave relative errors of ~1e-7
    np.testing.assert_allclose(projected, theirs.transform(scaled) * signs, rtol=1e-10,
                               atol=1e-10)


def test_kmeans_on_a_dask_array_costs_what_scikit_learn_costs(rows, chunked):
    scaled = preprocessing.StandardScaler().fit_transform(rows)
    data = da.from_array(scaled, chunks=(1_300, -1))
    ours = KMeans(5, random_state=2).fit(data)
    from_same_centres = cluster.KMeans(5, init=ours.cluster_centers_, n_init=1).fit(scaled)
    assert ours.inertia_ == pytest.approx(from_same_centres.inertia_, rel=1e-6)
    best_of_ten = cluster.KMeans(5, n_init=10, random_state=0).fit(scaled)
    assert ours.inertia_ <= best_of_ten.inertia_ * (1 + 1e-6)
    assert isinstance(ours.labels_, da.Array)
    np.testing.assert_array_equal(ours.labels_.compute(), from_same_centres.predict(scaled))


def test_fit_predict_gives_labels_of_the_fitted_rows(rows, chunked):
    scaled = preprocessing.StandardScaler().fit_transform(rows)
    on_numpy = KMeans(5, random_state=2)
    labels = on_numpy.fit_predict(scaled)
    assert isinstance(labels, np.ndarray) and labels.dtype == np.int64
    np.testing.assert_array_equal(labels, on_numpy.predict(scaled))
    lazy = KMeans(5, random_state=2).fit_predict(da.from_array(scaled, chunks=(1_300, -1)))
    assert isinstance(lazy, da.Array)
    assert adjusted_rand_score(lazy.compute(), labels) == 1.0


@pytest.mark.parametrize("method", ["predict", "transform", "score"])
def test_kmeans_before_fit_raises_not_fitted_on_dask_input(chunked, method):
    with pytest.raises(NotFittedError):
        getattr(KMeans(3), method)(chunked)


@pytest.mark.parametrize("estimator", [StandardScaler(), PCA(2), KMeans(3),
                                       Agglomerative(3, sample_size=500)])
def test_a_dask_array_with_other_features_is_refused(chunked, estimator):
    fitted = clone(estimator).fit(chunked)
    method = getattr(fitted, "transform", None) or fitted.predict
    with pytest.raises(ValueError, match="X has 5 features, but .* is expecting 6 features"):
        method(chunked[:, :5])


def test_a_dask_dataframe_is_refused_with_what_to_pass_instead(rows):
    frame = dd.from_pandas(pd.DataFrame(rows), npartitions=2)
    with pytest.raises(TypeError, match="to_dask_array"):
        KMeans(3).fit(frame)


def test_kmeans_asks_for_chunk_sizes_it_needs(chunked):
    unknown = chunked[chunked[:, 0] > -np.inf]  # row count unknown until computed
    with pytest.raises(ValueError, match="compute_chunk_sizes"):
        KMeans(3).fit(unknown)
    # the scaler needs no row count: it fits the job's matrix before its chunks are known
    scaler = StandardScaler().fit(unknown)
    np.testing.assert_allclose(scaler.mean_, StandardScaler().fit(chunked).mean_, rtol=1e-12)


def test_random_state_takes_none_int_and_a_random_state(chunked):
    def centers(random_state):
        model = KMeans(5, n_init=2, init_sample_size=300, random_state=random_state)
        return model.fit(chunked).cluster_centers_

    # a RandomState gives the fit one seed drawn from it, as scikit-learn's estimators do
    drawn = np.random.RandomState(7).randint(np.iinfo(np.int32).max)
    np.testing.assert_array_equal(centers(np.random.RandomState(7)), centers(drawn))
    generator = np.random.RandomState(7)
    centers(generator)
    assert generator.get_state()[2] != np.random.RandomState(7).get_state()[2]  # consumed
    assert centers(None).shape == (5, 6)
    with pytest.raises(ValueError):
        centers("seven")


def test_clone_keeps_the_parameters_and_refits_to_the_same_centers(chunked):
    model = KMeans(4, n_init=3, tol=1e-5, random_state=np.random.RandomState(3))
    copy = clone(model)
    params = copy.get_params()
    assert (params["n_clusters"], params["n_init"], params["tol"]) == (4, 3, 1e-5)
    # clone copies a RandomState, as scikit-learn's clone does: both draw the same seed
    np.testing.assert_array_equal(copy.fit(chunked).cluster_centers_,
                                  model.fit(chunked).cluster_centers_)
    fitted = KMeans(4, random_state=1).fit(chunked)
    refitted = clone(fitted)
    assert not hasattr(refitted, "cluster_centers_")
    np.testing.assert_array_equal(refitted.fit(chunked).cluster_centers_,
                                  fitted.cluster_centers_)


def test_a_numpy_pipeline_matches_scikit_learns_pipeline(rows):
    ours = Pipeline([("scale", StandardScaler()), ("pca", PCA(2)),
                     ("kmeans", KMeans(5, random_state=0))]).fit(rows)
    projected = make_pipeline(preprocessing.StandardScaler(),
                              decomposition.PCA(2, svd_solver="full")).fit_transform(rows)
    signs = np.sign((ours[:-1].transform(rows) * projected).sum(axis=0))
    np.testing.assert_allclose(ours[:-1].transform(rows) * signs, projected, rtol=1e-10,
                               atol=1e-10)
    centers = ours["kmeans"].cluster_centers_ * signs  # in scikit-learn's projection
    nearest = ((projected[:, None, :] - centers[None]) ** 2).sum(axis=-1).argmin(axis=1)
    np.testing.assert_array_equal(ours.predict(rows), nearest)
    assert ours[:-1].get_feature_names_out().tolist() == ["pca0", "pca1"]
    assert ours.get_feature_names_out().tolist() == [f"kmeans{i}" for i in range(5)]


def test_a_pipeline_runs_on_a_users_dask_array(rows, chunked):
    pipeline = make_pipeline(StandardScaler(), PCA(2), KMeans(3, random_state=0))
    labels = pipeline.fit_predict(chunked)
    assert isinstance(labels, da.Array)
    projected = make_pipeline(preprocessing.StandardScaler(),
                              decomposition.PCA(2, svd_solver="full")).fit_transform(rows)
    reference = cluster.KMeans(3, n_init=10, random_state=0).fit(projected)
    assert adjusted_rand_score(labels.compute(), reference.labels_) > 0.99
    np.testing.assert_array_equal(pipeline.predict(chunked).compute(), labels.compute())


def test_feature_names_follow_a_dataframe(rows):
    frame = pd.DataFrame(rows, columns=[f"f{i}" for i in range(6)])
    scaler = StandardScaler().fit(frame)
    assert scaler.feature_names_in_.tolist() == list(frame.columns)
    assert scaler.get_feature_names_out().tolist() == list(frame.columns)
    out = StandardScaler().set_output(transform="pandas").fit(frame).transform(frame)
    assert list(out.columns) == list(frame.columns)
    assert PCA(2).fit(frame).get_feature_names_out().tolist() == ["pca0", "pca1"]
    assert StandardScaler().fit(rows).get_feature_names_out().tolist()[:2] == ["x0", "x1"]


def test_a_fit_on_dask_pickles_without_its_lazy_labels(chunked):
    method = make_method("agglomerative", 4, {"sample_size": 400}, random_state=0).fit(chunked)
    assert isinstance(method.labels_, da.Array)
    copy = pickle.loads(pickle.dumps(method))
    assert not hasattr(copy, "labels_")
    np.testing.assert_array_equal(copy.predict(chunked).compute(), method.labels_.compute())
    on_numpy = KMeans(3, random_state=0).fit(chunked.compute())
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(on_numpy)).labels_,
                                  on_numpy.labels_)
