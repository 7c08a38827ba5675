"""Clustering metrics against scikit-learn and brute force, on numpy and unevenly chunked dask."""

import dask.array as da
import numpy as np
import pytest
from sklearn.cluster import KMeans as SklearnKMeans
from sklearn.datasets import make_blobs
from sklearn.metrics import calinski_harabasz_score, davies_bouldin_score, silhouette_score

from sonicatlas.evaluate.metrics import (
    calinski_harabasz,
    cluster_moments,
    davies_bouldin,
    evaluate,
    silhouette_sampled,
    within_cluster_sse,
)

K = 5
UNEVEN = ((700, 1_300, 250, 1_750, 1_000),)  # five chunks summing to 5,000 rows


@pytest.fixture(scope="module")
def blobs():
    X, _ = make_blobs(n_samples=5_000, n_features=6, centers=K, cluster_std=1.5,
                      random_state=4)
    fitted = SklearnKMeans(K, n_init=3, random_state=0, tol=0).fit(X)
    return X, fitted


def _inputs(X, labels, kind):
    if kind == "numpy":
        return X, labels
    return da.from_array(X, chunks=(UNEVEN[0], -1)), da.from_array(labels, chunks=UNEVEN)


def _labelings(X, fitted):
    random = np.random.default_rng(1).integers(K, size=len(X))
    return {"kmeans": fitted.labels_, "random": random}


@pytest.mark.parametrize("kind", ["numpy", "dask"])
@pytest.mark.parametrize("which", ["kmeans", "random"])
def test_ch_db_sse_match_sklearn_and_brute_force(blobs, kind, which):
    X, fitted = blobs
    labels = _labelings(X, fitted)[which]
    Xi, li = _inputs(X, labels, kind)
    moments = cluster_moments(Xi, li, K)
    assert calinski_harabasz(moments) == pytest.approx(
        calinski_harabasz_score(X, labels), rel=1e-9)
    assert davies_bouldin(Xi, li, moments) == pytest.approx(
        davies_bouldin_score(X, labels), rel=1e-9)
    brute = sum(((X[labels == j] - X[labels == j].mean(axis=0)) ** 2).sum() for j in range(K))
    assert within_cluster_sse(moments) == pytest.approx(brute, rel=1e-9)


def test_sse_is_sklearn_inertia_at_convergence(blobs):
    X, fitted = blobs
    moments = cluster_moments(da.from_array(X, chunks=(UNEVEN[0], -1)), fitted.labels_, K)
    assert within_cluster_sse(moments) == pytest.approx(fitted.inertia_, rel=1e-6)
    np.testing.assert_allclose(moments.centers, fitted.cluster_centers_, rtol=1e-6, atol=1e-9)


def test_sse_is_stable_far_from_the_origin(blobs):
    # sum_sq - |sum|^2 / count would lose ~12 digits here.
    X, fitted = blobs
    shifted = X + 1e6
    moments = cluster_moments(da.from_array(shifted, chunks=(UNEVEN[0], -1)), fitted.labels_, K)
    assert within_cluster_sse(moments) == pytest.approx(fitted.inertia_, rel=1e-6)


@pytest.mark.parametrize("kind", ["numpy", "dask"])
def test_empty_cluster_ids_are_dropped_like_sklearn(blobs, kind):
    X, fitted = blobs
    labels = fitted.labels_.copy()
    labels[labels == 2] = K  # id 2 is now empty, ids 0, 1, 3, 4, 5 are present
    Xi, li = _inputs(X, labels, kind)
    moments = cluster_moments(Xi, li, K + 1)
    assert moments.count[2] == 0
    assert calinski_harabasz(moments) == pytest.approx(
        calinski_harabasz_score(X, labels), rel=1e-9)
    assert davies_bouldin(Xi, li, moments) == pytest.approx(
        davies_bouldin_score(X, labels), rel=1e-9)


def test_one_cluster_and_bad_labels_raise(blobs):
    X, _ = blobs
    one = np.full(len(X), 3)
    moments = cluster_moments(X, one, K)
    with pytest.raises(ValueError, match="Number of labels is 1"):
        calinski_harabasz(moments)
    with pytest.raises(ValueError, match="Number of labels is 1"):
        davies_bouldin(X, one, moments)
    with pytest.raises(ValueError, match="Number of labels is 1"):
        calinski_harabasz_score(X, one)  # the same check as scikit-learn's
    with pytest.raises(ValueError, match="labels must lie in"):
        cluster_moments(X, np.full(len(X), K), K)


@pytest.mark.parametrize("kind", ["numpy", "dask"])
def test_silhouette_on_all_rows_is_exact(blobs, kind):
    X, fitted = blobs
    X, labels = X[:2_000], fitted.labels_[:2_000]
    Xi, li = ((X, labels) if kind == "numpy"
              else (da.from_array(X, chunks=(600, -1)), da.from_array(labels, chunks=600)))
    summary = silhouette_sampled(Xi, li, sample_size=2_000)
    assert summary.exact and len(summary.values) == 1 and summary.std == 0.0
    assert summary.sample_size == 2_000
    assert summary.mean == pytest.approx(silhouette_score(X, labels), rel=1e-12)


def test_sampled_silhouette_is_reproducible_and_close(blobs):
    X, fitted = blobs
    Xd = da.from_array(X, chunks=(UNEVEN[0], -1))
    ld = da.from_array(fitted.labels_, chunks=UNEVEN)
    first = silhouette_sampled(Xd, ld, sample_size=800, n_samples=3, random_state=7)
    again = silhouette_sampled(Xd, ld, sample_size=800, n_samples=3, random_state=7)
    other = silhouette_sampled(Xd, ld, sample_size=800, n_samples=3, random_state=8)
    assert first == again
    assert first.values != other.values
    assert not first.exact and first.sample_size == 800 and len(set(first.values)) == 3
    assert abs(first.mean - silhouette_score(X, fitted.labels_)) < 0.02
    assert first.min <= first.mean <= first.max


def test_evaluate_collects_every_metric(blobs):
    X, fitted = blobs
    Xd = da.from_array(X, chunks=(UNEVEN[0], -1))
    ld = da.from_array(fitted.labels_, chunks=UNEVEN)
    out = evaluate(Xd, ld, K, silhouette_sample_size=600, silhouette_samples=2)
    assert set(out) == {"sse", "calinski_harabasz", "davies_bouldin", "silhouette_mean",
                        "silhouette_std", "silhouette_sample_size", "silhouette_exact"}
    assert out["calinski_harabasz"] == pytest.approx(
        calinski_harabasz_score(X, fitted.labels_), rel=1e-9)
    assert out["silhouette_sample_size"] == 600 and out["silhouette_exact"] is False
