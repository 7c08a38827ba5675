"""Both engines (``engine: sonicatlas`` and ``engine: dask-ml``) against scikit-learn.

The job's correctness checks, run on each engine: clusters that cost at most 1% more than
scikit-learn's best of 10, PCA explained variance within 1e-6 of scikit-learn's, every row
assigned or rejected, the same seed giving the same run, and the same files either way.
"""

from __future__ import annotations

import json
from pathlib import Path

import dask.array as da
import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest
from sklearn.cluster import KMeans as SklearnKMeans
from sklearn.decomposition import PCA as SklearnPCA
from sklearn.metrics import adjusted_rand_score
from sklearn.preprocessing import StandardScaler as SklearnScaler

from conftest import (
    TEST_CLUSTER,
    blob_tracks,
    read_table,
    run_job,
    sklearn_reference,
    write_catalog,
)
from sonicatlas.config import ClusterTracksConfig, KMeansConfig, load_config
from sonicatlas.errors import ConfigError
from sonicatlas.modeling.engines import DaskMLKMeans, engine_named

CONF = Path(__file__).resolve().parents[1] / "conf"
ENGINES = ["sonicatlas", "dask-ml"]


# -- the dask-ml engine's pieces, against scikit-learn and numpy ------------------------------

def _frame(rows=20_000, seed=0) -> pd.DataFrame:
    """Five correlated features on different scales, float32 as the accepted rows hold them."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(0, 3, (5, 5))
    X = centers[rng.integers(5, size=rows)] + rng.normal(size=(rows, 5)) @ rng.normal(size=(5, 5))
    X = X * [1, 10, 100, 0.1, 1e4] + [0, 5, -60, 0.5, 2e5]
    return pd.DataFrame(X.astype(np.float32), columns=list("abcde"))


def test_dask_ml_pca_matches_sklearns_variances_signs_and_covariance():
    frame = _frame()
    engine = engine_named("dask-ml")
    scaler, scaled = engine.scale(dd.from_pandas(frame, npartitions=4), tuple("abcde"))
    pca = engine.project(scaler, scaled)

    Z = SklearnScaler().fit_transform(frame.to_numpy(np.float64))
    reference = SklearnPCA().fit(Z)
    np.testing.assert_allclose(pca.explained_variance_ratio_,
                               reference.explained_variance_ratio_, atol=1e-6)
    np.testing.assert_allclose(pca.explained_variance_, reference.explained_variance_,
                               rtol=1e-6)
    # the same orientation as scikit-learn's, so the map is drawn the same way round
    np.testing.assert_allclose(pca.components_, reference.components_, atol=1e-6)
    np.testing.assert_allclose(pca.covariance_, np.cov(Z, rowvar=False), atol=1e-9)
    assert isinstance(pca.mean_, np.ndarray) and np.abs(pca.mean_).max() < 1e-9


def test_dask_ml_kmeans_reports_the_exact_squared_cost_within_1pct_of_sklearns_best():
    Z = SklearnScaler().fit_transform(_frame(seed=3).to_numpy(np.float64))
    X = da.from_array(Z, chunks=(5_000, -1))
    kmeans = DaskMLKMeans(5, random_state=0).fit(X)

    squared = ((Z[:, None, :] - kmeans.cluster_centers_[None]) ** 2).sum(-1)
    assert kmeans.inertia_ == pytest.approx(squared.min(axis=1).sum(), rel=1e-9)
    np.testing.assert_array_equal(kmeans.cluster_sizes_,
                                  np.bincount(squared.argmin(axis=1), minlength=5))
    best = SklearnKMeans(5, n_init=10, random_state=0).fit(Z)
    assert kmeans.inertia_ <= best.inertia_ * 1.01
    np.testing.assert_array_equal(kmeans.predict(X).compute(), squared.argmin(axis=1))


def test_dask_ml_kmeans_with_one_seed_gives_the_same_centres():
    X = da.from_array(SklearnScaler().fit_transform(_frame(seed=4).to_numpy(np.float64)),
                      chunks=(5_000, -1))
    first = DaskMLKMeans(4, random_state=11).fit(X)
    second = DaskMLKMeans(4, random_state=11).fit(X)
    np.testing.assert_array_equal(first.cluster_centers_, second.cluster_centers_)


def test_engines_build_kmeans_with_the_configs_settings():
    config = KMeansConfig(max_iter=7, tol=1e-3, n_init=2, init_sample_size=500)
    for name, kind in (("sonicatlas", "KMeans"), ("dask-ml", "DaskMLKMeans")):
        kmeans = engine_named(name).kmeans(3, config, seed=5)
        assert type(kmeans).__name__ == kind
        assert kmeans.get_params() == {"n_clusters": 3, "n_init": 2, "init_sample_size": 500,
                                       "max_iter": 7, "tol": 1e-3, "random_state": 5}


def test_engine_is_declared_in_the_shipped_config_and_checked():
    assert "engine: sonicatlas" in (CONF / "cluster_tracks.yaml").read_text()
    assert ClusterTracksConfig().engine == "sonicatlas"
    assert load_config(ClusterTracksConfig, None, ["engine=dask-ml"]).engine == "dask-ml"
    with pytest.raises(ConfigError, match="engine"):
        load_config(ClusterTracksConfig, None, ["engine=spark"])


# -- the job on each engine ------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("engine", ENGINES)
def test_generated_catalog_cost_and_pca_match_sklearn(engine, tmp_path):
    from sonicatlas.synthetic.tracks import generate_tracks

    generate_tracks(str(tmp_path / "c"), rows=30_000, seed=3, rows_per_partition=10_000)
    summary = run_job(tmp_path / "run", f"input={tmp_path / 'c'}", "k=6", f"engine={engine}")
    frame = pd.read_parquet(tmp_path / "c")
    best_cost, ratios = sklearn_reference(frame, 6)
    assert summary.inertia <= best_cost * 1.01
    pca = read_table(tmp_path / "run/summary/pca")
    np.testing.assert_allclose(pca["explained_variance_ratio"], ratios, atol=1e-6)
    assignments = read_table(tmp_path / "run/assignments")
    assert sorted(assignments["track_id"]) == sorted(frame["track_id"])
    # the cost reported is the squared one the assignments carry
    assert (assignments["distance"] ** 2).sum() == pytest.approx(summary.inertia, rel=1e-5)
    manifest = json.loads((tmp_path / "run/manifest.json").read_text())
    assert manifest["clustering"]["engine"] == manifest["config"]["engine"] == engine


@pytest.mark.slow
@pytest.mark.parametrize("engine", ENGINES)
def test_every_row_is_assigned_or_rejected(engine, tmp_path):
    frame = blob_tracks(3_000, seed=5)
    frame.loc[10, "tempo"] = np.nan
    frame.loc[30, "loudness"] = 9.0
    frame.loc[2_500, "track_id"] = frame.loc[60, "track_id"]
    catalog = write_catalog(frame, tmp_path / "catalog", parts=3)
    summary = run_job(tmp_path / "run", f"input={catalog}", "k=3", f"engine={engine}")
    assignments = read_table(tmp_path / "run/assignments")
    rejects = read_table(tmp_path / "run/summary/rejects")
    assert len(assignments) + len(rejects) == len(frame) == summary.counts["rows_read"]
    assert len(rejects) == 3 and assignments["track_id"].is_unique


@pytest.mark.slow
@pytest.mark.parametrize("engine", ENGINES)
def test_same_seed_gives_identical_runs(engine, blob_catalog, tmp_path):
    for name in ("a", "b"):
        run_job(tmp_path / name, f"input={blob_catalog}", "k=5", "seed=7", f"engine={engine}")
    first, second = (read_table(tmp_path / f"{name}/assignments")
                     .sort_values("track_id", ignore_index=True) for name in ("a", "b"))
    pd.testing.assert_frame_equal(first, second)
    assert ((tmp_path / "a/model/model.json").read_text()
            == (tmp_path / "b/model/model.json").read_text())


def _layout(run: Path) -> dict[str, object]:
    """Every file of a run: a Parquet table's columns and dtypes, a JSON file's keys."""
    out = {}
    for path in sorted(p for p in run.rglob("*") if p.is_file()):
        name = str(path.relative_to(run))
        if name.endswith(".parquet") and "/" in name and not name.startswith("model/"):
            name = name.rsplit("/", 1)[0]  # a table written as a directory of parts
        if path.suffix == ".parquet":
            out[name] = read_table(path).dtypes.astype(str).to_dict()
        elif path.suffix == ".json":
            data = json.loads(path.read_text())
            out[name] = {key: sorted(value) if isinstance(value, dict) else None
                         for key, value in data.items()}
        else:
            out[name] = None
    return out


@pytest.mark.slow
def test_both_engines_write_the_same_files_columns_and_manifest_keys(blob_catalog, tmp_path):
    for engine in ENGINES:
        run_job(tmp_path / engine, f"input={blob_catalog}", "k=4", f"engine={engine}")
    ours, theirs = (_layout(tmp_path / engine) for engine in ENGINES)
    assert ours == theirs
    # well-separated blobs: both engines find the same four groups
    a, b = (read_table(tmp_path / f"{engine}/assignments").sort_values("track_id")
            for engine in ENGINES)
    assert adjusted_rand_score(a["cluster"], b["cluster"]) == 1.0


@pytest.mark.slow
def test_k_auto_algorithm_and_compare_run_on_the_dask_ml_engine(tmp_path):
    catalog = write_catalog(blob_tracks(4_000, groups=5, seed=21), tmp_path / "c")
    summary = run_job(tmp_path / "run", f"input={catalog}", "engine=dask-ml", "k=auto",
                      "sweep.k_max=7", "sweep.silhouette_sample_size=1500",
                      "sweep.stability_sample_size=1500", "sweep.null_sample_size=1000",
                      "algorithm=gmm", "compare=[minibatch, gmm]")
    sweep = read_table(tmp_path / "run/summary/k_sweep")
    assert list(sweep["k"]) == list(range(2, 8)) and summary.k == 5
    table = read_table(tmp_path / "run/summary/method_comparison").set_index("method")
    assert list(table.index) == ["kmeans", "minibatch", "gmm"]
    assert (table["adjusted_rand_vs_kmeans"] > 0.95).all()
    assignments = read_table(tmp_path / "run/assignments")
    sizes = sorted(int(s) for s in table.loc["gmm", "cluster_sizes"].split(", "))
    assert sorted(assignments["cluster"].value_counts()) == sizes
    manifest = json.loads((tmp_path / "run/manifest.json").read_text())
    assert manifest["clustering"]["engine"] == "dask-ml"
    assert manifest["clustering"]["algorithm"] == "gmm"


@pytest.mark.slow
def test_segment_listeners_recover_the_planted_tastes_on_the_dask_ml_engine(tmp_path):
    from jobs.segment_listeners import Config, run
    from sonicatlas.synthetic.listens import generate_listens
    from sonicatlas.synthetic.tracks import generate_tracks

    generate_tracks(str(tmp_path / "tracks"), rows=6_000, seed=1, rows_per_partition=3_000)
    run_job(tmp_path / "tracks-run", f"input={tmp_path / 'tracks'}", "k=6")
    generate_listens(str(tmp_path / "tracks"), str(tmp_path / "log"), users=600,
                     listens=40_000, seed=2, rows_per_partition=20_000, tastes=4)
    runs = {}
    for engine in ENGINES:
        config = load_config(Config, None, [
            *TEST_CLUSTER, f"listens={tmp_path / 'log' / 'listens'}",
            f"users={tmp_path / 'log' / 'users'}", f"tracks_run={tmp_path / 'tracks-run'}",
            "k=4", f"engine={engine}"])
        runs[engine] = run(config, out=str(tmp_path / engine), echo=lambda *_: None)
        agreement = read_table(tmp_path / engine / "summary/taste_agreement")
        assert agreement["adjusted_rand"].item() > 0.8
    assert runs["dask-ml"].inertia <= runs["sonicatlas"].inertia * 1.01
    manifest = json.loads((tmp_path / "dask-ml/manifest.json").read_text())
    assert manifest["config"]["engine"] == manifest["clustering"]["engine"] == "dask-ml"
