"""Map projections besides PCA: the stratified sample, and ICA, UMAP and t-SNE against the
libraries' own fit and transform on the same rows."""

from __future__ import annotations

import json
import warnings

import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from sonicatlas.config import ClusterTracksConfig, load_config
from sonicatlas.contract import FEATURES
from sonicatlas.errors import ConfigError
from sonicatlas.modeling.model import ClusterModel
from sonicatlas.modeling.projections import extra_projections, project_tracks
from sonicatlas.modeling.stratified import stratified_sample
from tests.conftest import CHROMIUM, blob_tracks, open_report, run_job, write_catalog

#: rows per cluster: one large, two middling, one tiny
SIZES = {0: 6_000, 1: 1_500, 2: 400, 3: 25}
SMALL_FIT = {"umap": {"n_epochs": 50},
             "tsne": {"n_iter": 100, "early_exaggeration_iter": 50}}


def labelled(parts: int = 4, seed: int = 0):
    """A frame with a feature column and unequal clusters, shuffled over ``parts``."""
    labels = np.repeat(list(SIZES), list(SIZES.values()))
    labels = np.random.default_rng(seed).permutation(labels)
    frame = pd.DataFrame({"row": np.arange(len(labels)), "cluster": labels.astype(np.int32)})
    ddf = dd.from_pandas(frame, npartitions=parts)
    return frame, ddf["cluster"], ddf[["row"]]


def test_the_sample_is_reproducible_for_a_seed():
    _, labels, rows = labelled()
    first = stratified_sample(labels, rows, 1_000, seed=3)
    again = stratified_sample(labels, rows, 1_000, seed=3)
    other = stratified_sample(labels, rows, 1_000, seed=4)
    assert first.rows["row"].tolist() == again.rows["row"].tolist()
    assert first.rows["row"].tolist() != other.rows["row"].tolist()


def test_the_sample_holds_every_cluster_and_small_ones_their_share():
    frame, labels, rows = labelled()
    size = 1_000
    sample = stratified_sample(labels, rows, size, seed=0)
    assert len(sample.rows) == size and sample.rows["row"].is_unique
    # the rows are the frame's rows, with their clusters
    taken = frame.set_index("row").loc[sample.rows["row"], "cluster"]
    np.testing.assert_array_equal(taken.to_numpy(), sample.clusters)
    counts = taken.value_counts()
    floor = size // (2 * len(SIZES))  # the stated rule: min(size of cluster, n / 2k) at least
    for cluster, n in SIZES.items():
        assert counts.get(cluster, 0) >= min(n, floor)
    assert counts[3] == SIZES[3]  # the tiny cluster is there whole
    # the rest in proportion to what is left: the largest cluster gets the most
    assert counts[0] > counts[1] > counts[2]


def test_a_sample_as_large_as_the_rows_is_every_row():
    frame, labels, rows = labelled()
    sample = stratified_sample(labels, rows, 100_000, seed=0)
    assert sorted(sample.rows["row"]) == frame["row"].tolist()


def tracks_and_model(rows: int = 3_000, parts: int = 3):
    """A blob catalog as a dask frame, its clusters, and a model whose scaler is numpy's."""
    frame = blob_tracks(rows, groups=4, seed=1)
    X = frame[list(FEATURES)].to_numpy(dtype=np.float64)
    mean, std = X.mean(axis=0), X.std(axis=0)
    model = ClusterModel(tuple(FEATURES), tuple(mean), tuple(std), (0.0,) * len(FEATURES),
                         ((1.0,) + (0.0,) * (len(FEATURES) - 1),) * 2, (0.5, 0.5),
                         ((0.0,) * len(FEATURES),), 0)
    frame["cluster"] = frame["genre"].str[1:].astype(np.int32)
    ddf = dd.from_pandas(frame[[*FEATURES, "cluster"]], npartitions=parts)
    Z = ((X - mean) / std).astype(np.float32)  # the reference's own z-scores
    return ddf, model, Z


def placed_and_sample(name: str, params=None, size: int = 800):
    ddf, model, Z = tracks_and_model()
    projected = project_tracks(ddf, ddf["cluster"], model, [name], size, seed=0,
                               params={name: params} if params else None)
    placed = projected.placed.compute().to_numpy(dtype=np.float64)
    starts = np.cumsum([0, *ddf.map_partitions(len).compute()])
    sample_rows = np.concatenate([starts[i] + p for i, p in
                                  enumerate(projected.sample.positions)])
    return Z, placed, sample_rows, starts


def test_ica_is_fastica_fitted_on_the_sample_then_applied_to_every_track():
    from sklearn.decomposition import FastICA
    Z, placed, sample_rows, _ = placed_and_sample("ica")
    ica = FastICA(n_components=2, whiten="unit-variance", random_state=0).fit(Z[sample_rows])
    np.testing.assert_allclose(placed, ica.transform(Z), rtol=1e-4, atol=1e-4)


def per_partition_transform(model, Z, sample_rows, starts) -> np.ndarray:
    """The library's ``transform`` of each partition's rows outside the sample."""
    out = np.full((len(Z), 2), np.nan)
    in_sample = np.zeros(len(Z), dtype=bool)
    in_sample[sample_rows] = True
    for low, high in zip(starts[:-1], starts[1:], strict=True):
        rows = np.arange(low, high)[~in_sample[low:high]]
        out[rows] = np.asarray(model.transform(Z[rows]))
    return out


@pytest.mark.slow
def test_umap_is_umap_learns_fit_on_the_sample_and_its_transform_of_the_rest():
    umap = pytest.importorskip("umap")
    Z, placed, sample_rows, starts = placed_and_sample("umap", SMALL_FIT["umap"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = umap.UMAP(n_components=2, random_state=0, **SMALL_FIT["umap"]).fit(
            Z[sample_rows])
        np.testing.assert_allclose(placed[sample_rows], reference.embedding_, atol=1e-4)
        others = np.setdiff1d(np.arange(len(Z)), sample_rows)
        expected = per_partition_transform(reference, Z, sample_rows, starts)
    np.testing.assert_allclose(placed[others], expected[others], atol=1e-3)


@pytest.mark.slow
def test_tsne_is_opentsnes_fit_on_the_sample_and_its_transform_of_the_rest():
    openTSNE = pytest.importorskip("openTSNE")
    Z, placed, sample_rows, starts = placed_and_sample("tsne", SMALL_FIT["tsne"])
    reference = openTSNE.TSNE(n_components=2, random_state=0, **SMALL_FIT["tsne"]).fit(
        Z[sample_rows])
    np.testing.assert_allclose(placed[sample_rows], np.asarray(reference), atol=1e-4)
    others = np.setdiff1d(np.arange(len(Z)), sample_rows)
    expected = per_partition_transform(reference, Z, sample_rows, starts)
    span = np.ptp(np.asarray(reference))
    np.testing.assert_allclose(placed[others], expected[others], atol=1e-4 * span)


def test_the_default_is_pca_alone_and_names_are_checked():
    assert ClusterTracksConfig().projections == ("pca",)
    assert extra_projections(ClusterTracksConfig().projections) == ()
    assert ClusterTracksConfig().projection_sample == 100_000
    with pytest.raises(ConfigError, match="projections.*pacmap"):
        load_config(ClusterTracksConfig, None, ["projections=[pca, pacmap]"])
    with pytest.raises(ConfigError, match="pca is always made"):
        load_config(ClusterTracksConfig, None, ["projections=[umap]"])
    with pytest.raises(ConfigError, match="projection_params"):
        load_config(ClusterTracksConfig, None, ["projection_params={umap: {n_epochs: 5}}"])


@pytest.mark.slow
def test_a_run_with_every_projection_writes_the_columns_maps_and_plain_model(tmp_path):
    catalog = write_catalog(blob_tracks(8_000, groups=4, seed=2), tmp_path / "catalog", parts=4)
    run = tmp_path / "run"
    params = json.dumps(SMALL_FIT).replace('"', "")
    run_job(run, f"input={catalog}", "k=4", "projections=[pca, ica, umap, tsne]",
            "projection_sample=1500", f"projection_params={params}",
            cluster=["cluster.n_workers=1", "cluster.processes=true",
                     "cluster.dashboard_address=127.0.0.1:0"])
    assignments = pd.read_parquet(run / "assignments")
    assert len(assignments) == 8_000
    columns = ["ica1", "ica2", "umap1", "umap2", "tsne1", "tsne2"]
    assert set(columns) <= set(assignments.columns)
    for column in columns:
        assert assignments[column].dtype == np.float32
        assert np.isfinite(assignments[column]).all(), column
    for name in ("ica", "umap", "tsne"):
        with Image.open(run / f"maps/clusters_{name}.png") as image:
            assert image.width >= 900
    saved = json.loads((run / "model/projections.json").read_text())
    assert len(saved["ica"]["components"]) == 2 and saved["umap"]["saved"] is False
    assert {p.suffix for p in (run / "model").iterdir()} <= {".json", ".parquet"}
    report = (run / "report.html").read_text()
    for name, title in (("ica", "ICA"), ("umap", "UMAP"), ("tsne", "t-SNE")):
        assert f'id="cluster-map-{name}" alt="Tracks by cluster on {title} 1 x {title} 2"' in report
    _maps_are_drawn_in_chromium(run)


SHOWN_MAP = """id => { const img = document.getElementById(id); img.scrollIntoView();
  const r = img.getBoundingClientRect();
  return [img.complete, img.naturalWidth, img.naturalHeight, r.width > 0 && r.height > 0]; }"""


def _maps_are_drawn_in_chromium(run):
    """Every projection's map decodes in the browser at the PNG's own size, offline."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright not installed")
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not installed (apt-get install chromium)")
    errors, outside, shown = [], [], {}
    with sync_api.sync_playwright() as playwright:
        browser, page = open_report(playwright, run / "report.html", errors, outside)
        try:
            for name in ("pca", "ica", "umap", "tsne"):
                element = "cluster-map" if name == "pca" else f"cluster-map-{name}"
                shown[name] = page.evaluate(SHOWN_MAP, element)
        finally:
            browser.close()
    assert errors == [] and outside == []
    for name, (complete, width, height, visible) in shown.items():
        png = run / "maps" / ("clusters.png" if name == "pca" else f"clusters_{name}.png")
        with Image.open(png) as image:
            assert (complete, width, height, visible) == (True, *image.size, True), name
