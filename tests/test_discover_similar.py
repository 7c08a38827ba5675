"""Similar songs equal a brute-force numpy top-n, in memory and over a run on a LocalCluster."""

import numpy as np
import pandas as pd
import pytest
from distributed import Client, LocalCluster
from sklearn.preprocessing import StandardScaler

from conftest import blob_tracks, run_job, write_catalog
from sonicatlas.contract import FEATURES
from sonicatlas.discover.querydata import load_matrix, open_query_run
from sonicatlas.discover.similar import similar_to, similar_tracks
from sonicatlas.errors import InputError

pytestmark = pytest.mark.slow  # two cluster-tracks runs


def brute_force(X, ids, q, n, metric, exclude=None, mask=None, decimals=None):
    """The reference: every row scored in float64 by numpy, sorted by (score, id).

    ``decimals`` rounds the scores before sorting, so that identical vectors (exact ties) are
    tied here too whatever order BLAS summed them in."""
    X = X.astype(np.float64)
    if metric == "cosine":
        norms = np.linalg.norm(X, axis=1) * np.linalg.norm(q)
        score = np.divide(X @ q, norms, out=np.zeros(len(X)), where=norms > 0)
        key = -score
    else:
        score = np.sqrt(((X - q) ** 2).sum(axis=1))
        key = score
    keep = np.ones(len(X), dtype=bool) if mask is None else mask.copy()
    if exclude is not None:
        keep &= ids != exclude
    rows = np.flatnonzero(keep)
    if decimals is not None:
        key = np.round(key, decimals)
    order = rows[np.lexsort((ids[rows], key[rows]))][:n]
    return list(ids[order]), score[order]


@pytest.fixture(scope="module")
def client():
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address="127.0.0.1:0") as cluster, Client(cluster) as c:
        yield c


@pytest.fixture(scope="module", params=[1, 3], ids=["1-partition", "3-partitions"])
def run(request, tmp_path_factory):
    root = tmp_path_factory.mktemp(f"similar{request.param}")
    frame = blob_tracks(3_000, seed=3)
    catalog = write_catalog(frame, root / "catalog", parts=request.param)
    run_job(root / "run", f"input={catalog}", "k=4")
    return root / "run", frame


def reference_matrix(run_dir):
    """The run's query data as pandas reads it, with clusters from assignments by id."""
    query = pd.read_parquet(run_dir / "query")
    clusters = pd.read_parquet(run_dir / "assignments", columns=["track_id", "cluster"])
    query = query.merge(clusters, on="track_id")
    return (query[list(FEATURES)].to_numpy(np.float64),
            query["track_id"].astype(str).to_numpy(dtype=object), query["cluster"].to_numpy())


def test_query_data_is_the_catalog_standardised_by_the_runs_scaler(run):
    run_dir, frame = run
    query = pd.read_parquet(run_dir / "query").set_index("track_id").loc[frame["track_id"]]
    expected = StandardScaler().fit_transform(frame[list(FEATURES)].to_numpy(np.float64))
    assert query.dtypes.eq(np.float32).all() and list(query.columns) == list(FEATURES)
    np.testing.assert_allclose(query.to_numpy(), expected, atol=2e-5)
    # partition i of query/ holds the rows of assignments/ partition i, in order
    for part in sorted((run_dir / "query").glob("*.parquet")):
        ids = pd.read_parquet(part, columns=["track_id"])["track_id"]
        other = pd.read_parquet(run_dir / "assignments" / part.name, columns=["track_id"])
        assert ids.tolist() == other["track_id"].tolist()


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_similar_tracks_equal_brute_force_on_a_local_cluster(run, client, metric):
    run_dir, _ = run
    X, ids, clusters = reference_matrix(run_dir)
    for row in (0, 777, 2_999):
        query, table = similar_tracks(str(run_dir), ids[row], n=15, metric=metric)
        expected_ids, expected_scores = brute_force(X, ids, X[row], 15, metric, exclude=ids[row])
        assert table["track_id"].tolist() == expected_ids
        score = "similarity" if metric == "cosine" else "distance"
        np.testing.assert_allclose(table[score], expected_scores, rtol=1e-9, atol=1e-12)
        assert ids[row] not in table["track_id"].tolist()
        assert table["rank"].tolist() == list(range(1, 16))
        assert query.cluster == clusters[row]


def test_same_cluster_and_the_metadata_of_each_result(run, client):
    run_dir, frame = run
    X, ids, clusters = reference_matrix(run_dir)
    _, table = similar_tracks(str(run_dir), ids[5], n=20, same_cluster=True)
    expected_ids, _ = brute_force(X, ids, X[5], 20, "cosine", exclude=ids[5],
                                  mask=clusters == clusters[5])
    assert table["track_id"].tolist() == expected_ids
    assert (table["cluster"] == clusters[5]).all()
    meta = frame.set_index("track_id").loc[table["track_id"]]
    assert table["track_name"].tolist() == meta["track_name"].tolist()
    assert table["artist_name"].tolist() == meta["artist_name"].tolist()
    names = pd.read_parquet(run_dir / "summary/cluster_profiles").set_index("cluster")["name"]
    assert table["cluster_name"].tolist() == names.loc[table["cluster"]].tolist()


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_in_memory_matrix_equals_brute_force(run, client, metric):
    run_dir, _ = run
    matrix = load_matrix(str(run_dir))
    X, ids, _ = reference_matrix(run_dir)
    order = np.argsort(ids)
    assert sorted(matrix.ids.to_pylist()) == list(ids[order])
    row = matrix.position(ids[42])
    got = similar_to(matrix.vectors, matrix.ids, matrix.vectors[row], 25, metric,
                     exclude=ids[42])
    expected_ids, _ = brute_force(X, ids, X[42], 25, metric, exclude=ids[42])
    assert got["track_id"].tolist() == expected_ids


def test_ties_are_broken_by_track_id():
    X = np.array([[1, 0], [2, 0], [1, 0], [0, 1], [3, 0]], dtype=np.float32)
    ids = np.array(["e", "d", "a", "b", "c"], dtype=object)
    got = similar_to(X, ids, np.array([1.0, 0.0]), n=4)
    assert got["track_id"].tolist() == ["a", "c", "d", "e"]  # four at cosine 1, by id
    got = similar_to(X, ids, np.array([1.0, 0.0]), n=2, metric="euclidean", exclude="a")
    assert got["track_id"].tolist() == ["e", "d"]


def test_ties_across_partitions_are_broken_by_track_id(client, tmp_path):
    # 40 tracks share one sound under shuffled ids, spread over 4 partitions: the 12 nearest of
    # one of them are 12 of the other 39, all at the same score, so only the ids order them.
    frame = blob_tracks(2_000, seed=5)
    rng = np.random.default_rng(5)
    twins = rng.choice(len(frame), size=40, replace=False)
    features = list(FEATURES)
    frame.loc[frame.index[twins], features] = frame.loc[frame.index[twins[0]], features].to_numpy()
    catalog = write_catalog(frame.sample(frac=1, random_state=5), tmp_path / "catalog", parts=4)
    run_job(tmp_path / "run", f"input={catalog}", "k=4")
    X, ids, _ = reference_matrix(tmp_path / "run")
    query = frame["track_id"].iloc[twins[7]]
    row = int(np.flatnonzero(ids == query)[0])
    for metric in ("cosine", "euclidean"):
        _, table = similar_tracks(str(tmp_path / "run"), query, n=12, metric=metric)
        expected, _ = brute_force(X, ids, X[row], 12, metric, exclude=query, decimals=9)
        twin_ids = set(frame["track_id"].iloc[twins])
        assert set(expected) <= twin_ids  # the reference's answer is all ties
        assert table["track_id"].tolist() == expected == sorted(twin_ids - {query})[:12]


def test_unknown_track_is_an_error(run, client):
    with pytest.raises(InputError, match="unknown track id 'nope'"):
        similar_tracks(str(run[0]), "nope")


def test_a_run_without_query_data_says_how_to_make_it(run, tmp_path):
    import shutil
    old = tmp_path / "old"
    shutil.copytree(run[0], old)
    shutil.rmtree(old / "query")
    with pytest.raises(InputError, match="no query data.*re-run `sonicatlas run cluster-tracks`"):
        open_query_run(str(old))
