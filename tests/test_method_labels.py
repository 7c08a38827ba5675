"""Every compared method labels every track: its column, profiles, agreement and exports,
checked against scikit-learn and pandas on the run's own files."""

from __future__ import annotations

import itertools

import dask.array as da
import numpy as np
import pandas as pd
import pytest
from sklearn.cluster import MiniBatchKMeans as SklearnMiniBatchKMeans
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score
from sklearn.mixture import GaussianMixture as SklearnGaussianMixture

from conftest import blob_tracks, read_table, run_job, write_catalog
from sonicatlas.contract import FEATURES
from sonicatlas.errors import InputError
from sonicatlas.estimators.arrays import sample_rows
from sonicatlas.estimators.registry import make_method
from sonicatlas.runs.export import export_tracks

pytestmark = pytest.mark.slow  # the module makes one run first

K, SEED, GMM_SAMPLE = 4, 0, 1_000


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """3,000 blob tracks, k=4, compared with mini-batch KMeans and a GMM on a 1,000-row
    sample (so that the GMM is fitted on a sample, not every row)."""
    root = tmp_path_factory.mktemp("methods")
    catalog = write_catalog(blob_tracks(3_000, groups=K, seed=5), root / "catalog")
    run_job(root / "run", f"input={catalog}", f"k={K}", f"seed={SEED}",
            "compare=[minibatch, gmm]", f"compare_params={{gmm: {{sample_size: {GMM_SAMPLE}}}}}")
    return root / "run"


@pytest.fixture(scope="module")
def assignments(run):
    return read_table(run / "assignments")


@pytest.fixture(scope="module")
def scaled(run, assignments):
    """The run's z-scores (``query/``) as a dask array chunked as the job's matrix was (one
    chunk per partition), row for row the tracks of ``assignments/``."""
    import dask.dataframe as dd

    query = dd.read_parquet(str(run / "query"))
    lengths = tuple(query.map_partitions(len).compute())
    matrix = query.compute()
    assert (matrix["track_id"].to_numpy() == assignments["track_id"].to_numpy()).all()
    return da.from_array(matrix[list(FEATURES)].to_numpy(dtype=np.float32),
                         chunks=(lengths, -1))


def test_each_compared_method_gets_a_column_of_labels(assignments):
    for name in ("kmeans", "minibatch", "gmm"):
        column = assignments[f"cluster_{name}"]
        assert column.dtype == np.int32
        assert set(column.unique()) == set(range(K))


def test_gmm_column_is_scikit_learns_mixture_fitted_on_the_same_sample(assignments, scaled):
    # the job fits on a reproducible sample of the scaled matrix, drawn chunk by chunk;
    # scikit-learn fits the same rows from scratch with the same seed
    sample = sample_rows(scaled, GMM_SAMPLE, SEED)
    reference = SklearnGaussianMixture(n_components=K, random_state=SEED).fit(sample)
    want = reference.predict(scaled.compute().astype(np.float64))
    np.testing.assert_array_equal(assignments["cluster_gmm"].to_numpy(), want)


@pytest.mark.parametrize("name, params", [("minibatch", {}), ("gmm", {"sample_size": GMM_SAMPLE}),
                                          ("kmeans", {})])
def test_each_column_is_its_estimators_predict_on_the_query_matrix(assignments, scaled, name,
                                                                   params):
    # the method fitted again on query/'s matrix with the run's seed, then asked for labels
    estimator = make_method(name, K, params, random_state=SEED).fit(scaled)
    want = np.asarray(estimator.predict(scaled.compute()))
    np.testing.assert_array_equal(assignments[f"cluster_{name}"].to_numpy(), want)


def test_minibatch_labels_the_partition_scikit_learn_finds(assignments, scaled):
    reference = SklearnMiniBatchKMeans(K, random_state=SEED, n_init=3).fit(scaled.compute())
    assert adjusted_rand_score(reference.predict(scaled.compute()),
                               assignments["cluster_minibatch"]) > 0.99


def test_agreement_is_scikit_learns_on_the_same_labels(run, assignments):
    table = read_table(run / "summary/method_agreement")
    methods = ["kmeans", "minibatch", "gmm"]
    assert list(zip(table["method_a"], table["method_b"], strict=True)) == list(
        itertools.combinations(methods, 2))
    for row in table.itertuples():
        a, b = assignments[f"cluster_{row.method_a}"], assignments[f"cluster_{row.method_b}"]
        assert row.adjusted_rand == pytest.approx(adjusted_rand_score(a, b), abs=1e-12)
        assert row.normalized_mutual_info == pytest.approx(
            normalized_mutual_info_score(a, b), abs=1e-12)


def test_method_profiles_are_pandas_group_means(run, assignments):
    query = read_table(run / "query")
    import json
    model = json.loads((run / "model/model.json").read_text())
    features = model["features"]
    original = query[features].to_numpy(np.float64) * model["scale_std"] + model["scale_mean"]
    frame = pd.DataFrame(original, columns=features).assign(
        cluster=assignments["cluster_gmm"].to_numpy())
    want = frame.groupby("cluster")[features].mean()
    table = read_table(run / "summary/cluster_profiles_gmm").set_index("cluster")
    assert table["size"].to_dict() == frame["cluster"].value_counts().to_dict()
    assert table["share"].sum() == pytest.approx(1.0)
    assert table["name"].is_unique
    # the profiles sum the features as read, float32; query/ rounds z-scores to float32
    np.testing.assert_allclose(table.loc[want.index, features], want, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_export_by_a_methods_cluster_is_the_rows_pandas_selects(run, assignments, tmp_path,
                                                                 fmt):
    result = export_tracks(run, tmp_path / f"gmm2.{fmt}", cluster=2, format=fmt,
                           method="gmm")
    got = (pd.read_csv(result.out, dtype={"track_id": str}) if fmt == "csv"
           else pd.read_parquet(result.out))
    want = assignments[assignments["cluster_gmm"] == 2]
    assert result.rows == len(want) and result.method == "gmm"
    assert sorted(got["track_id"]) == sorted(want["track_id"])
    names = read_table(run / "summary/cluster_profiles_gmm").set_index("cluster")["name"]
    assert (got["cluster_gmm_name"] == names[2]).all()
    assert (got["cluster_gmm"] == 2).all()
    merged = got.merge(want[["track_id", "cluster", "cluster_minibatch"]], on="track_id",
                       suffixes=("", "_want"))
    assert (merged["cluster"] == merged["cluster_want"]).all()
    assert (merged["cluster_minibatch"] == merged["cluster_minibatch_want"]).all()


def test_export_by_a_method_the_run_did_not_compare_names_those_it_did(run, tmp_path):
    with pytest.raises(InputError, match="gmm, kmeans, minibatch"):
        export_tracks(run, tmp_path / "x.csv", cluster=0, format="csv", method="dbscan")
    assert not (tmp_path / "x.csv").exists()


def test_export_command_takes_method(run, assignments, tmp_path):
    from click.testing import CliRunner

    from sonicatlas.cli import main

    out = tmp_path / "mb.csv"
    result = CliRunner().invoke(main, ["export", str(run), "--method", "minibatch",
                                       "--cluster", "1", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "of minibatch" in result.output
    got = pd.read_csv(out, dtype={"track_id": str})
    assert sorted(got["track_id"]) == sorted(
        assignments.loc[assignments["cluster_minibatch"] == 1, "track_id"])


def test_a_run_without_compare_writes_no_method_columns(tmp_path):
    catalog = write_catalog(blob_tracks(1_000, groups=K, seed=7), tmp_path / "c")
    run_job(tmp_path / "run", f"input={catalog}", f"k={K}")
    assignments = read_table(tmp_path / "run/assignments")
    assert not [c for c in assignments.columns if c.startswith("cluster_")]
    assert not list((tmp_path / "run/summary").glob("cluster_profiles_*"))
    assert not (tmp_path / "run/summary/method_agreement").exists()


def test_a_density_methods_noise_is_minus_one_in_its_column_profiles_and_export(tmp_path):
    frame = blob_tracks(1_500, groups=K, seed=9)
    run_job(tmp_path / "run", f"input={write_catalog(frame, tmp_path / 'c')}", f"k={K}",
            "compare=[dbscan]", "compare_params={dbscan: {min_samples: 20}}")
    assignments = read_table(tmp_path / "run/assignments")
    labels = assignments["cluster_dbscan"]
    assert (labels == -1).any() and labels.max() >= 1
    table = read_table(tmp_path / "run/summary/cluster_profiles_dbscan").set_index("cluster")
    assert table.loc[-1, "name"] == "Noise"
    assert table["size"].to_dict() == labels.value_counts().to_dict()
    result = export_tracks(tmp_path / "run", tmp_path / "noise.csv", cluster=-1, format="csv",
                           method="dbscan")
    got = pd.read_csv(result.out, dtype={"track_id": str})
    assert sorted(got["track_id"]) == sorted(assignments.loc[labels == -1, "track_id"])
    assert got["cluster_dbscan_name"].isna().all()  # noise is no cluster: no name
