"""KMeans against scikit-learn and brute force, on numpy and chunked dask input."""

import dask.array as da
import numpy as np
import pytest
from sklearn.cluster import KMeans as SklearnKMeans
from sklearn.datasets import make_blobs

from sonicatlas.estimators.kmeans import KMeans


@pytest.fixture(scope="module")
def blobs():
    X, _ = make_blobs(n_samples=20_000, n_features=6, centers=7, cluster_std=2.5,
                      random_state=3)
    return X


def brute_force_cost(X, centers):
    squared = ((X[:, None, :] - centers[None]) ** 2).sum(-1)
    return squared.min(axis=1).sum(), squared.argmin(axis=1)


@pytest.mark.slow
def test_cost_within_one_percent_of_sklearn_best_of_ten(blobs):
    ours = KMeans(7, init_sample_size=2_000, random_state=0).fit(
        da.from_array(blobs, chunks=(3_000, -1)))
    reference = SklearnKMeans(7, n_init=10, random_state=0).fit(blobs)
    assert ours.inertia_ <= reference.inertia_ * 1.01


def test_inertia_is_the_exact_squared_cost_of_the_final_centers(blobs):
    ours = KMeans(7, random_state=1).fit(da.from_array(blobs, chunks=(4_000, -1)))
    cost, labels = brute_force_cost(blobs, ours.cluster_centers_)
    assert ours.inertia_ == pytest.approx(cost, rel=1e-9)
    np.testing.assert_array_equal(ours.cluster_sizes_, np.bincount(labels, minlength=7))


def test_predict_is_the_nearest_center(blobs):
    ours = KMeans(7, random_state=0).fit(blobs)
    _, labels = brute_force_cost(blobs, ours.cluster_centers_)
    np.testing.assert_array_equal(ours.predict(blobs), labels)
    dask_labels = ours.predict(da.from_array(blobs, chunks=(5_000, -1))).compute()
    np.testing.assert_array_equal(dask_labels, labels)
    distances = ours.transform(blobs[:50])
    np.testing.assert_allclose(distances.argmin(axis=1), labels[:50])


def test_same_seed_same_centers_and_float32_costs_the_same(blobs):
    chunked = da.from_array(blobs, chunks=(3_000, -1))
    first = KMeans(7, random_state=5).fit(chunked)
    second = KMeans(7, random_state=5).fit(chunked)
    np.testing.assert_array_equal(first.cluster_centers_, second.cluster_centers_)
    single = KMeans(7, random_state=5).fit(chunked.astype(np.float32))
    assert abs(single.inertia_ - first.inertia_) / first.inertia_ < 1e-4


def test_the_same_centers_on_one_thread_and_on_many(blobs):
    # the restarts run as tasks: however many run at once, each runs on one thread
    import dask

    chunked = da.from_array(blobs, chunks=(3_000, -1))
    with dask.config.set(scheduler="sync"):
        alone = KMeans(7, random_state=2).fit(chunked)
    with dask.config.set(scheduler="threads", num_workers=4):
        together = KMeans(7, random_state=2).fit(chunked)
    np.testing.assert_array_equal(alone.init_costs_, together.init_costs_)
    np.testing.assert_array_equal(alone.cluster_centers_, together.cluster_centers_)


def test_more_clusters_than_rows_is_an_error():
    with pytest.raises(ValueError, match="larger than the number of rows"):
        KMeans(5).fit(np.zeros((3, 2)))


def test_lloyd_pass_kernel_matches_numpy_in_float64():
    from sonicatlas.estimators.lloyd import lloyd_partial

    rng = np.random.default_rng(8)
    block = rng.normal(size=(20_000, 10)).astype(np.float32)
    centers = rng.normal(size=(6, 10))
    distances = ((block.astype(np.float64)[:, None, :] - centers[None]) ** 2).sum(axis=2)
    labels = distances.argmin(axis=1)
    expected = np.zeros((6, 12))
    for j in range(10):
        expected[:, j] = np.bincount(labels, weights=block[:, j], minlength=6)
    expected[:, 10] = np.bincount(labels, minlength=6)
    expected[:, 11] = np.bincount(labels, weights=distances.min(axis=1), minlength=6)
    np.testing.assert_allclose(lloyd_partial(block, centers), expected, rtol=1e-10)


@pytest.mark.parametrize("order", ["C", "F"])
def test_score_rows_standardises_labels_and_projects_like_numpy(order):
    from sonicatlas.estimators.lloyd import score_rows

    rng = np.random.default_rng(4)
    block = np.asarray(rng.normal(3.0, 2.0, size=(5_000, 10)), dtype=np.float32, order=order)
    mean, scale = rng.normal(3.0, 0.1, size=10), rng.uniform(1.5, 2.5, size=10)
    centers = rng.normal(size=(6, 10))
    centers[4] = centers[1]  # a tie: the first of the two, as argmin
    project_mean, project = rng.normal(size=10), rng.normal(size=(2, 10))
    labels, squared, projected = score_rows(block, centers, mean=mean, scale=scale,
                                            project_mean=project_mean, project=project)
    z = (block.astype(np.float64) - mean) / scale
    distances = ((z[:, None, :] - centers[None]) ** 2).sum(axis=2)
    np.testing.assert_array_equal(labels, distances.argmin(axis=1))
    assert not (labels == 4).any()
    np.testing.assert_allclose(squared, distances.min(axis=1), rtol=1e-12)
    np.testing.assert_allclose(projected, (z - project_mean) @ project.T, rtol=1e-10,
                               atol=1e-12)
    plain_labels, plain_squared, nothing = score_rows(z, centers)
    np.testing.assert_array_equal(plain_labels, labels)
    np.testing.assert_allclose(plain_squared, squared, rtol=1e-12)
    assert nothing is None


def test_candidate_costs_are_each_center_sets_exact_cost():
    from sonicatlas.estimators.lloyd import candidate_costs

    rng = np.random.default_rng(6)
    block = rng.normal(size=(3_000, 5)).astype(np.float32)
    candidates = rng.normal(size=(4, 3, 5))
    expected = [((block.astype(np.float64)[:, None, :] - centers[None]) ** 2).sum(axis=2)
                .min(axis=1).sum() for centers in candidates]
    np.testing.assert_allclose(candidate_costs(block, candidates), expected, rtol=1e-12)


def test_restarts_seed_like_scikit_learn_and_reach_the_same_optimum(blobs):
    from sklearn.cluster import kmeans_plusplus as sklearn_plusplus

    from sonicatlas.estimators.lloyd import kmeans_plusplus, restart

    for seed in range(5):  # the same rows from the same seed
        _, ours = kmeans_plusplus(blobs, 7, np.random.RandomState(seed))
        _, theirs = sklearn_plusplus(blobs, 7, random_state=seed)
        np.testing.assert_array_equal(ours, theirs)
    tol = 1e-4 * np.var(blobs, axis=0).mean()
    for seed in range(5):  # and the same local optimum as scikit-learn's KMeans(n_init=1)
        centers = restart(blobs, 7, seed, tol)
        reference = SklearnKMeans(7, n_init=1, random_state=seed).fit(blobs)
        assert brute_force_cost(blobs, centers)[0] == pytest.approx(reference.inertia_,
                                                                     rel=1e-6)


def test_refine_converges_the_cheapest_candidate_as_scikit_learn_would(blobs):
    from sonicatlas.estimators.lloyd import candidate_costs, refine

    rng = np.random.default_rng(2)
    candidates = np.stack([blobs[rng.choice(len(blobs), 7, replace=False)] for _ in range(4)])
    pieces = np.array_split(blobs, 3)
    costs = [candidate_costs(p, candidates) for p in pieces]
    cheapest = int(np.argmin([brute_force_cost(blobs, c)[0] for c in candidates]))
    tol = 1e-4 * np.var(blobs, axis=0).mean()
    np.testing.assert_array_equal(refine(candidates, costs, pieces, tol, max_iter=0),
                                  candidates[cheapest])
    reference = SklearnKMeans(7, init=candidates[cheapest], n_init=1, tol=1e-4,
                              algorithm="lloyd").fit(blobs)
    np.testing.assert_allclose(refine(candidates, costs, pieces, tol),
                               reference.cluster_centers_, rtol=1e-7, atol=1e-9)


def test_restarts_on_float32_rows_in_float64_are_scikit_learns(blobs):
    """The job's samples are float64 copies of float32 rows; the kernels then read them as
    float32 (no float64 compile) and must reach scikit-learn's seeds and optimum all the same."""
    from sklearn.cluster import kmeans_plusplus as sklearn_plusplus

    from sonicatlas.estimators.lloyd import exact_float32, kmeans_plusplus, restart

    rows = blobs.astype(np.float32).astype(np.float64)
    assert exact_float32(rows).dtype == np.float32
    assert exact_float32(blobs).dtype == np.float64  # not every float64 is a float32
    _, ours = kmeans_plusplus(exact_float32(rows), 7, np.random.RandomState(0))
    np.testing.assert_array_equal(ours, sklearn_plusplus(rows, 7, random_state=0)[1])
    tol = 1e-4 * np.var(rows, axis=0).mean()
    reference = SklearnKMeans(7, n_init=1, random_state=0).fit(rows)
    assert brute_force_cost(rows, restart(rows, 7, 0, tol))[0] == \
        pytest.approx(reference.inertia_, rel=1e-6)
