"""The cluster-tracks job end to end on a real LocalCluster."""

from __future__ import annotations

import json
import socket
import time

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from PIL import Image

from conftest import (
    ALL_METHODS,
    TEST_CLUSTER,
    blob_tracks,
    read_table,
    run_job,
    sklearn_reference,
    write_catalog,
)
from sonicatlas.cli import main
from sonicatlas.contract import FEATURES


@pytest.mark.slow
def test_cost_and_pca_match_sklearn_and_outputs_are_complete(blob_catalog, tmp_path):
    summary = run_job(tmp_path / "run", f"input={blob_catalog}", "k=4")
    run = tmp_path / "run"
    frame = pd.concat(pd.read_parquet(p) for p in sorted(blob_catalog.glob("*.parquet")))
    best_cost, ratios = sklearn_reference(frame, 4)
    assert summary.inertia <= best_cost * 1.01
    pca = read_table(run / "summary/pca")
    np.testing.assert_allclose(pca["explained_variance_ratio"], ratios, atol=1e-6)

    assignments = read_table(run / "assignments")
    assert sorted(assignments["track_id"]) == sorted(frame["track_id"])
    # the cost the job reports is the one its assignments carry
    assert (assignments["distance"] ** 2).sum() == pytest.approx(summary.inertia, rel=1e-5)
    assert {"track_name", "genre", "pc1", "pc2"} <= set(assignments.columns)

    profiles = read_table(run / "summary/cluster_profiles")
    sizes = assignments["cluster"].value_counts().sort_index()
    np.testing.assert_array_equal(profiles["size"], sizes.to_numpy())
    joined = assignments.merge(frame, on="track_id")
    means = joined.groupby("cluster")["tempo"].mean()
    # the accepted rows hold features in float32 (7 digits): means agree to ~1e-7
    np.testing.assert_allclose(profiles["tempo_mean"], means.to_numpy(), rtol=1e-6)
    assert profiles["name"].is_unique

    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["rows"]["rows_read"] == len(frame) and manifest["k"] == 4
    assert (run / "model/model.json").exists() and (run / "model/centroids.parquet").exists()
    assert "<html" in (run / "performance.html").read_text()[:2000].lower()
    with Image.open(run / "maps/clusters.png") as image:
        assert image.width >= 900
    assert (run / "maps/density.png").exists()
    assert sorted(p.stem for p in (run / "maps/features").glob("*.png")) == sorted(FEATURES)
    assert "Sonic fingerprints" in (run / "report.html").read_text()
    assert not list(tmp_path.glob(".run.partial-*"))


@pytest.mark.slow
def test_same_seed_gives_identical_assignments(blob_catalog, tmp_path):
    run_job(tmp_path / "a", f"input={blob_catalog}", "k=5", "seed=7")
    run_job(tmp_path / "b", f"input={blob_catalog}", "k=5", "seed=7")
    first = read_table(tmp_path / "a/assignments").sort_values("track_id", ignore_index=True)
    second = read_table(tmp_path / "b/assignments").sort_values("track_id", ignore_index=True)
    pd.testing.assert_frame_equal(first, second)


@pytest.mark.slow
def test_every_row_is_assigned_or_rejected_with_its_reason(tmp_path):
    frame = blob_tracks(3_000, seed=5)
    frame.loc[10, "tempo"] = np.nan
    frame.loc[20, "energy"] = np.inf
    frame.loc[30, "loudness"] = 9.0
    frame.loc[40, "duration_ms"] = 0.0
    frame.loc[50, "track_id"] = None
    frame.loc[2_500, "track_id"] = frame.loc[60, "track_id"]  # duplicate in another file
    frame.loc[61, "track_id"] = frame.loc[62, "track_id"]      # duplicate in the same file
    catalog = write_catalog(frame, tmp_path / "catalog", parts=3)
    summary = run_job(tmp_path / "run", f"input={catalog}", "k=3")

    assignments = read_table(tmp_path / "run/assignments")
    rejects = read_table(tmp_path / "run/summary/rejects")
    assert len(assignments) + len(rejects) == len(frame) == summary.counts["rows_read"]
    assert sorted(rejects["reason"]) == sorted([
        "missing tempo", "infinite energy", "loudness outside [-60, 5]",
        "duration_ms outside (0, 8.64e+07]", "missing track_id", "duplicate track_id",
        "duplicate track_id"])
    duplicate_rows = rejects.loc[rejects["reason"] == "duplicate track_id"]
    # the later occurrence is the one rejected, and it can be found again in its file
    located = zip(duplicate_rows["partition"], duplicate_rows["row"], strict=True)
    assert sorted(located) == [(0, 62), (2, 500)]
    assert assignments["track_id"].is_unique


def _cli(*args):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def _run_args(out, *overrides):
    args = ["run", "cluster-tracks", "--out", str(out)]
    for text in (*TEST_CLUSTER, *overrides):
        args += ["--set", text]
    return args


def _assert_nothing_written(out):
    assert not out.exists()
    assert not list(out.parent.glob(f".{out.name}.partial-*"))


def test_missing_column_names_it_and_the_columns_there(tmp_path):
    catalog = write_catalog(blob_tracks(200).drop(columns=["tempo"]), tmp_path / "c")
    result = _cli(*_run_args(tmp_path / "run", f"input={catalog}"))
    assert result.exit_code == 2
    assert "'tempo'" in result.output and "have: track_id" in result.output
    assert str(catalog) in result.output
    _assert_nothing_written(tmp_path / "run")


@pytest.mark.slow
def test_mapped_column_names_are_used(tmp_path):
    catalog = write_catalog(blob_tracks(300).rename(columns={"tempo": "bpm"}), tmp_path / "c")
    result = _cli(*_run_args(tmp_path / "run", f"input={catalog}", "columns={bpm: tempo}",
                             "k=2"))
    assert result.exit_code == 0, result.output
    assert "rows in 300" in result.output


def test_wrong_column_type_is_an_error(tmp_path):
    frame = blob_tracks(200)
    frame["energy"] = pd.Timestamp("2020-01-01")
    catalog = write_catalog(frame, tmp_path / "c")
    result = _cli(*_run_args(tmp_path / "run", f"input={catalog}"))
    assert result.exit_code == 2 and "'energy'" in result.output and "datetime" in result.output
    _assert_nothing_written(tmp_path / "run")


@pytest.mark.slow
def test_empty_input_is_an_error(tmp_path):
    catalog = write_catalog(blob_tracks(0), tmp_path / "c", parts=1)
    result = _cli(*_run_args(tmp_path / "run", f"input={catalog}"))
    assert result.exit_code == 2 and "empty" in result.output
    (tmp_path / "none").mkdir()
    result = _cli(*_run_args(tmp_path / "run", f"input={tmp_path / 'none'}"))
    assert result.exit_code == 2 and "no Parquet files" in result.output
    _assert_nothing_written(tmp_path / "run")


@pytest.mark.slow
def test_corrupt_parquet_file_is_named(tmp_path):
    catalog = write_catalog(blob_tracks(300), tmp_path / "c", parts=3)
    (catalog / "part.1.parquet").write_bytes(b"PAR1 this is not parquet")
    result = _cli(*_run_args(tmp_path / "run", f"input={catalog}"))
    assert result.exit_code == 2 and "part.1.parquet" in result.output
    _assert_nothing_written(tmp_path / "run")


def test_more_clusters_than_valid_rows_is_an_error(tmp_path):
    frame = blob_tracks(8)
    frame.loc[:3, "tempo"] = np.nan
    catalog = write_catalog(frame, tmp_path / "c", parts=1)
    result = _cli(*_run_args(tmp_path / "run", f"input={catalog}", "k=6"))
    assert result.exit_code == 2 and "k=6" in result.output and "(4 of 8" in result.output
    _assert_nothing_written(tmp_path / "run")


@pytest.mark.slow
def test_unreachable_scheduler_fails_fast_naming_the_address(blob_catalog, tmp_path):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    address = f"tcp://127.0.0.1:{port}"
    start = time.monotonic()
    result = _cli(*_run_args(tmp_path / "run", f"input={blob_catalog}",
                             "cluster.connect_timeout=3"), "--scheduler", address)
    assert result.exit_code == 2 and address in result.output
    assert time.monotonic() - start < 30
    _assert_nothing_written(tmp_path / "run")


def test_existing_run_directory_is_not_overwritten(blob_catalog, tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "keep.txt").write_text("mine")
    result = _cli(*_run_args(tmp_path / "run", f"input={blob_catalog}"))
    assert result.exit_code == 2 and "--overwrite" in result.output
    assert (tmp_path / "run" / "keep.txt").read_text() == "mine"


@pytest.mark.slow
def test_hive_partitions_are_read_and_underscore_folders_are_not(tmp_path):
    frame = blob_tracks(600)
    frame.to_parquet(tmp_path / "c", partition_cols=["genre"], index=False)
    write_catalog(blob_tracks(50, seed=9), tmp_path / "c" / "_rejects", parts=1)
    summary = run_job(tmp_path / "run", f"input={tmp_path / 'c'}", "k=2")
    assert summary.counts["rows_read"] == 600
    assignments = read_table(tmp_path / "run/assignments")
    assert sorted(assignments["genre"].astype(str)) == sorted(frame["genre"].astype(str))


@pytest.mark.slow
def test_generated_catalog_matches_sklearn(tmp_path):
    from sonicatlas.synthetic.tracks import generate_tracks

    generate_tracks(str(tmp_path / "c"), rows=30_000, seed=3, rows_per_partition=10_000)
    summary = run_job(tmp_path / "run", f"input={tmp_path / 'c'}", "k=6")
    frame = pd.read_parquet(tmp_path / "c")
    best_cost, ratios = sklearn_reference(frame, 6)
    assert summary.counts["rows_accepted"] == len(frame)
    assert summary.inertia <= best_cost * 1.01
    pca = read_table(tmp_path / "run/summary/pca")
    np.testing.assert_allclose(pca["explained_variance_ratio"], ratios, atol=1e-6)


@pytest.mark.slow
def test_k_auto_finds_the_planted_groups_and_writes_the_sweep(tmp_path):
    catalog = write_catalog(blob_tracks(4_000, groups=5, seed=21), tmp_path / "c")
    summary = run_job(tmp_path / "run", f"input={catalog}", "k=auto", "sweep.k_max=8",
                      "sweep.silhouette_sample_size=1500", "sweep.stability_sample_size=1500",
                      "sweep.null_sample_size=1000")
    sweep = read_table(tmp_path / "run/summary/k_sweep")
    assert list(sweep["k"]) == list(range(2, 9))
    assert summary.k == 5 and sweep.loc[sweep["chosen"], "k"].item() == 5
    chosen = sweep.set_index("k").loc[5]
    assert chosen["silhouette_mean"] > chosen["null_silhouette"] + 0.2
    assert chosen["stable"] and chosen["supported"]
    agreement = read_table(tmp_path / "run/summary/genre_agreement")
    assert agreement["adjusted_rand"].item() > 0.9  # the planted groups are the genres


@pytest.mark.slow
def test_another_algorithm_labels_the_tracks_and_every_method_is_compared(tmp_path):
    catalog = write_catalog(blob_tracks(3_000, groups=4, seed=8), tmp_path / "c")
    summary = run_job(tmp_path / "run", f"input={catalog}", "k=4", "algorithm=gmm",
                      *ALL_METHODS)
    table = read_table(tmp_path / "run/summary/method_comparison").set_index("method")
    assert list(table.index) == ["kmeans", "minibatch", "gmm", "agglomerative", "dbscan",
                                 "hdbscan", "meanshift"]
    # well-separated blobs: every method finds the same four groups; the density methods
    # call the sparse edges noise, which counts as a group of its own in the adjusted Rand
    agreement = table["adjusted_rand_vs_kmeans"]
    assert (agreement.drop(["dbscan", "hdbscan"]) > 0.95).all(), agreement
    assert (agreement[["dbscan", "hdbscan"]] > 0.6).all(), agreement
    assert table.loc["hdbscan", "n_clusters"] == 4
    assert 3 <= table.loc["dbscan", "n_clusters"] <= 5  # an automatic eps may join two blobs
    assert (table.loc[["dbscan", "hdbscan"], "noise_share"] < 0.35).all()
    assert table.loc["kmeans", "adjusted_rand_vs_kmeans"] == 1.0
    # 3,000 rows fit in agglomerative's 10,000-row sample: it saw every row, and says so
    assert not table.loc["agglomerative", "fitted_on_sample"]
    assert table.loc["agglomerative", "sample_size"] == 3_000
    assert "eps=" in table.loc["dbscan", "params"]
    manifest = json.loads((tmp_path / "run/manifest.json").read_text())
    assert manifest["clustering"]["algorithm"] == "gmm"
    assert manifest["clustering"]["methods"]["meanshift"] == {
        "fitted_on_sample": True, "sample_size": table.loc["meanshift", "sample_size"],
        "params": table.loc["meanshift", "params"]}
    # the run's clusters are the GMM's: they match its row in the comparison
    assignments = read_table(tmp_path / "run/assignments")
    sizes = sorted(int(s) for s in table.loc["gmm", "cluster_sizes"].split(", "))
    assert sorted(assignments["cluster"].value_counts()) == sizes
    assert summary.k == 4


@pytest.mark.slow
def test_a_kmeans_run_never_imports_scikit_learn_on_the_workers(blob_catalog, tmp_path):
    # Importing scikit-learn is a cost every new worker process would pay (docs/benchmarks.md).
    from distributed import Client, LocalCluster

    def loaded(prefix: str) -> bool:  # sent by value: importing this module would load sklearn
        import sys
        return any(name == prefix or name.startswith(prefix + ".") for name in sys.modules)

    with LocalCluster(n_workers=1, threads_per_worker=1, host="127.0.0.1",
                      dashboard_address="127.0.0.1:0") as cluster, Client(cluster) as client:
        run_job(tmp_path / "run", f"input={blob_catalog}", "k=4",
                cluster=[f"cluster.scheduler={cluster.scheduler_address}"])
        assert read_table(tmp_path / "run/assignments")["cluster"].nunique() == 4
        assert list(client.run(loaded, "sonicatlas.estimators.lloyd").values()) == [True]
        assert list(client.run(loaded, "sklearn").values()) == [False]
