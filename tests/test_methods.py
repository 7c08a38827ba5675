"""The other clustering methods against scikit-learn, on well-separated blobs in dask chunks."""

import dask.array as da
import numpy as np
import pytest
from scipy.spatial.distance import cdist
from sklearn.base import clone
from sklearn.cluster import DBSCAN, HDBSCAN, AgglomerativeClustering, MeanShift
from sklearn.cluster import KMeans as SklearnKMeans
from sklearn.cluster import MiniBatchKMeans as SklearnMiniBatchKMeans
from sklearn.datasets import make_blobs
from sklearn.exceptions import NotFittedError
from sklearn.metrics import adjusted_rand_score
from sklearn.mixture import GaussianMixture

from sonicatlas.estimators.arrays import sample_rows
from sonicatlas.estimators.registry import METHOD_NAMES, make_method

K = 4
SEED = 0
# Small samples so that every method labels rows it never saw; DBSCAN's min_samples is the
# 2 x dimensions rule of thumb (with 5, the knee leaves ~4% of Gaussian rows as noise in 5-D).
PARAMS = {
    "kmeans": (K, {"init_sample_size": 1_000}),
    "minibatch": (K, {"batch_size": 256, "init_sample_size": 1_000}),
    "gmm": (K, {"sample_size": 1_500}),
    "agglomerative": (K, {"sample_size": 1_500}),
    "meanshift": (None, {"sample_size": 1_000, "bin_seeding": True}),
    "dbscan": (None, {"sample_size": 2_000, "min_samples": 10}),
    "hdbscan": (None, {"sample_size": 1_500, "min_cluster_size": 20}),
}
SAMPLED = ("gmm", "agglomerative", "meanshift", "dbscan", "hdbscan")


def blobs(outliers=0):
    """4 blobs in 5-D, centers 10 apart with std 0.8, as float32 in 6 chunks of rows."""
    centers = np.zeros((K, 5))
    centers[1, 0] = centers[2, 1] = centers[3, 2] = 10.0
    X, y = make_blobs(4_000, n_features=5, centers=centers, cluster_std=0.8,
                      random_state=SEED)
    if outliers:
        far = 60.0 * np.sign(np.random.default_rng(1).normal(size=(outliers, 5)))
        X, y = np.vstack([X, far + np.arange(outliers)[:, None]]), np.r_[y, [-1] * outliers]
    X = X.astype(np.float32)
    return X, da.from_array(X, chunks=(700, -1)), y


@pytest.fixture(scope="module")
def data():
    return blobs()


class _Fitted(dict):
    """Each method fitted on first use, once per module (keeps every test's setup short)."""

    def __init__(self, X):
        super().__init__()
        self.X = X

    def __missing__(self, name):
        k, params = PARAMS[name]
        self[name] = make_method(name, k, params, SEED).fit(self.X)
        return self[name]


@pytest.fixture(scope="module")
def fitted(data):
    return _Fitted(data[1])


def sample_of(X, method):
    return sample_rows(X, method.get_params()["sample_size"], SEED)


@pytest.mark.parametrize("name", METHOD_NAMES)
def test_every_row_is_labelled_by_its_blob(name, data, fitted):
    X_np, X, y = data
    method = fitted[name]
    labels = method.predict(X)
    assert isinstance(labels, da.Array) and labels.dtype == np.int64
    labels = labels.compute()
    assert adjusted_rand_score(y, labels) > 0.95
    assert method.n_clusters_ == K
    assert labels.max() == K - 1
    # Same rows as numpy give the same labels.
    numpy_labels = method.predict(X_np)
    assert isinstance(numpy_labels, np.ndarray)
    np.testing.assert_array_equal(numpy_labels, labels)
    assert method.fit_seconds_ > 0


@pytest.mark.parametrize("name", SAMPLED)
def test_sampled_methods_record_their_sample(name, data, fitted):
    _, X, _ = data
    method = fitted[name]
    assert method.fitted_on_sample_
    assert method.sample_size_ == len(sample_of(X, method)) < X.shape[0]


def test_full_data_methods_use_every_row(data, fitted):
    _, X, _ = data
    for name in ("kmeans", "minibatch"):
        assert not fitted[name].fitted_on_sample_
        assert fitted[name].sample_size_ == X.shape[0]
    # sample_size at least the rows: the whole data set, reported as no sample.
    whole = make_method("gmm", K, {"sample_size": 10_000}, SEED).fit(X)
    assert not whole.fitted_on_sample_ and whole.sample_size_ == X.shape[0]


def sklearn_on_sample(name, method, sample):
    """scikit-learn's labels of the sample, fitted with the method's parameters."""
    p = method.get_params()
    if name == "gmm":
        return GaussianMixture(K, covariance_type="full", random_state=SEED).fit(
            sample).predict(sample)
    if name == "agglomerative":
        return AgglomerativeClustering(K, linkage="ward").fit(sample).labels_
    if name == "meanshift":
        return MeanShift(bandwidth=method.bandwidth_, bin_seeding=True).fit(sample).labels_
    if name == "dbscan":
        return DBSCAN(eps=method.eps_, min_samples=p["min_samples"]).fit(sample).labels_
    return HDBSCAN(min_cluster_size=p["min_cluster_size"], copy=True).fit(sample).labels_


@pytest.mark.parametrize("name", SAMPLED)
def test_sample_rows_get_sklearns_labels(name, data, fitted):
    _, X, _ = data
    method = fitted[name]
    sample = sample_of(X, method)
    reference = sklearn_on_sample(name, method, sample)
    np.testing.assert_array_equal(method.sample_labels_, reference)
    predicted = method.predict(sample)
    if name == "hdbscan":  # sample points HDBSCAN left as noise may join a cluster
        clustered = reference >= 0
        np.testing.assert_array_equal(predicted[clustered], reference[clustered])
    else:
        np.testing.assert_array_equal(predicted, reference)


def test_meanshift_bandwidth_is_sklearns_estimate(data, fitted):
    from sklearn.cluster import estimate_bandwidth

    _, X, _ = data
    method = fitted["meanshift"]
    sample = sample_of(X, method)
    assert method.bandwidth_ == estimate_bandwidth(sample, quantile=0.2, random_state=SEED)


def test_kmeans_methods_match_sklearn_on_all_rows(data, fitted):
    X_np, X, _ = data
    labels = fitted["kmeans"].predict(X).compute()
    reference = SklearnKMeans(K, n_init=10, random_state=SEED).fit_predict(X_np)
    assert adjusted_rand_score(reference, labels) == 1.0
    labels = fitted["minibatch"].predict(X).compute()
    reference = SklearnMiniBatchKMeans(K, batch_size=256, random_state=SEED).fit_predict(X_np)
    assert adjusted_rand_score(reference, labels) == 1.0


def test_minibatch_streams_every_chunk_reproducibly(data, fitted):
    _, X, _ = data
    method = fitted["minibatch"]
    steps_per_epoch = sum(-(-size // 256) for size in X.chunks[0])
    assert method.n_steps_ == 3 * steps_per_epoch
    again = make_method("minibatch", K, PARAMS["minibatch"][1], SEED).fit(X)
    np.testing.assert_array_equal(again.cluster_centers_, method.cluster_centers_)


def test_dbscan_eps_is_the_knee_of_the_samples_k_distances(data, fitted):
    _, X, y = data
    method = fitted["dbscan"]
    sample = sample_of(X, method)
    # brute force: each row's distance to its 10th nearest row, itself counted as the first
    curve = np.sort(np.sort(cdist(sample.astype(np.float64), sample), axis=1)[:, 9])
    np.testing.assert_allclose(method.k_distance_, curve, rtol=1e-6)
    # the knee: largest perpendicular distance below the chord, from the 2-D cross product
    start, end = np.array([0.0, curve[0]]), np.array([len(curve) - 1.0, curve[-1]])
    offset, chord = np.c_[np.arange(len(curve)), curve] - start, end - start
    below = offset[:, 0] * chord[1] - offset[:, 1] * chord[0]
    assert method.eps_ == pytest.approx(curve[np.argmax(below)], rel=1e-6)
    # Labels of the sample rows' blobs: sample_rows keeps rows in order, so draw them alike.
    blob = sample_rows(da.from_array(np.c_[X.compute(), y], chunks=(700, -1)),
                       method.sample_size, SEED)[:, -1]
    gap = min(cdist(sample[blob == a], sample[blob == b]).min()
              for a in range(K) for b in range(a + 1, K))
    assert np.median(curve) < method.eps_ < gap


def test_dbscan_marks_far_outliers_as_noise():
    _, X, y = blobs(outliers=5)
    method = make_method("dbscan", None, PARAMS["dbscan"][1], SEED).fit(X)
    labels = method.predict(X).compute()
    outlier = y == -1
    assert (labels[outlier] == -1).all()
    assert adjusted_rand_score(y[~outlier], labels[~outlier]) > 0.95
    assert method.n_clusters_ == K


def test_given_eps_is_used_as_is(data):
    _, X, _ = data
    method = make_method("dbscan", None, {"eps": 1.5, "sample_size": 1_000}, SEED).fit(X)
    assert method.eps_ == 1.5 and method.k_distance_ is None


def test_make_method_passes_parameters_and_rejects_unknown_names():
    method = make_method("gmm", 3, {"sample_size": 500, "max_iter": 20}, 7)
    assert method.get_params()["n_components"] == 3
    assert method.get_params()["random_state"] == 7
    assert clone(method).get_params() == method.get_params()
    # k is ignored by the methods that find the number of clusters themselves.
    assert (make_method("hdbscan", 5, {}, 0).get_params()
            == make_method("hdbscan", None, {}, 0).get_params())
    with pytest.raises(ValueError, match="valid names: kmeans, minibatch, gmm"):
        make_method("spectral", 4, {}, 0)
    with pytest.raises(ValueError, match="needs a number of clusters"):
        make_method("agglomerative", None, {}, 0)


def test_predict_before_fit_is_an_error():
    with pytest.raises(NotFittedError):
        make_method("dbscan", None, {}, 0).predict(np.zeros((3, 2)))
