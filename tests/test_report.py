"""The HTML report: complete, offline, graceful without optional tables, rendered in Chromium."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image, ImageDraw
from sklearn.metrics import silhouette_samples

from conftest import blob_tracks, run_job, write_catalog
from sonicatlas.contract import FEATURES
from sonicatlas.summaries.profiles import name_clusters
from sonicatlas.visual import maps
from sonicatlas.visual.report import _z_scores, write_report

ARTIFACTS = Path(__file__).parent / "artifacts"
CHROMIUM = Path("/usr/bin/chromium")
K = 4
OPTIONAL = ("track_sample", "feature_correlation", "representative_tracks", "k_sweep",
            "silhouette")
SECTIONS = ["Cluster map", "Cluster sizes", "Sonic fingerprints", "Feature z-scores by cluster",
            "Feature distributions by cluster", "Feature correlation", "Choosing k",
            "Silhouette by cluster", "Representative tracks"]


def _profiles(tracks: pd.DataFrame, names: list[str], quartiles: bool, zscores: bool):
    groups = tracks.groupby("cluster")
    table = pd.DataFrame({"cluster": np.arange(K, dtype=np.int32), "name": names})
    table["size"] = groups.size().reindex(range(K), fill_value=0).to_numpy()
    table["share"] = table["size"] / table["size"].sum()
    for f in FEATURES:
        table[f"{f}_mean"] = groups[f].mean().to_numpy()
        table[f"{f}_std"] = groups[f].std().to_numpy()
        if zscores:
            table[f"{f}_z"] = (table[f"{f}_mean"] - tracks[f].mean()) / tracks[f].std()
        if quartiles:
            for q, label in ((0.25, "q25"), (0.5, "median"), (0.75, "q75")):
                table[f"{f}_{label}"] = groups[f].quantile(q).to_numpy()
    table["popularity_mean"] = groups["popularity"].mean().to_numpy()
    return table


def make_run(root: Path, *, tables=OPTIONAL, quartiles=True, zscores=True, png=True) -> Path:
    """A run directory written by hand with the columns cluster-tracks writes."""
    tracks = blob_tracks(800, groups=K, seed=3)
    tracks["cluster"] = tracks.pop("genre").str[1:].astype(np.int32)
    tracks["artist_name"] = [f"artist {i % 37}" for i in range(len(tracks))]
    tracks["popularity"] = np.arange(len(tracks)) % 100
    scaled = (tracks[list(FEATURES)] - tracks[list(FEATURES)].mean()) / tracks[list(FEATURES)].std()
    _, singular, components = np.linalg.svd(scaled.to_numpy(), full_matrices=False)
    tracks[["pc1", "pc2"]] = scaled.to_numpy() @ components[:2].T
    ratio = singular**2 / np.sum(singular**2)
    centers = scaled.groupby(tracks["cluster"]).mean().to_numpy()
    names = name_clusters(centers, FEATURES)

    summary = root / "summary"
    summary.mkdir(parents=True)
    _profiles(tracks, names, quartiles, zscores).to_parquet(summary / "cluster_profiles")
    pca = pd.DataFrame(components, columns=list(FEATURES))
    pca.insert(0, "explained_variance_ratio", ratio)
    pca.insert(0, "explained_variance", singular**2 / (len(tracks) - 1))
    pca.insert(0, "component", [f"pc{i + 1}" for i in range(len(pca))])
    pca.to_parquet(summary / "pca")
    pd.DataFrame({"reason": ["missing value"], "detail": ["tempo"], "partition": [0],
                  "row": [5]}).to_parquet(summary / "rejects")
    if "track_sample" in tables:
        tracks.iloc[::2].to_parquet(summary / "track_sample")
    if "feature_correlation" in tables:
        correlation = tracks[list(FEATURES)].corr().reset_index(names="feature")
        correlation.to_parquet(summary / "feature_correlation")
    if "representative_tracks" in tables:
        distance = np.linalg.norm(scaled.to_numpy() - centers[tracks["cluster"]], axis=1)
        nearest = tracks.assign(distance=distance).sort_values(["cluster", "distance"])
        nearest = nearest.groupby("cluster").head(3).reset_index(drop=True)
        nearest.insert(1, "rank", nearest.groupby("cluster").cumcount() + 1)
        nearest[["cluster", "rank", "track_id", "distance", "track_name",
                 "artist_name"]].to_parquet(summary / "representative_tracks")
    if "k_sweep" in tables:
        ks = np.arange(2, 8)
        pd.DataFrame({"k": ks, "sse": 9000 / ks, "calinski_harabasz": 800 - 40 * ks,
                      "davies_bouldin": 1 + np.abs(ks - K) / 4,
                      "silhouette_mean": 0.5 - np.abs(ks - K) / 20, "silhouette_std": 0.02,
                      "null_silhouette": 0.1, "chosen": ks == K, "elbow": ks == K,
                      "stable": True}).to_parquet(summary / "k_sweep")
    if "silhouette" in tables:
        sampled = tracks.iloc[::3]
        pd.DataFrame({"track_id": sampled["track_id"], "cluster": sampled["cluster"],
                      "silhouette": silhouette_samples(scaled.iloc[::3], sampled["cluster"])}
                     ).to_parquet(summary / "silhouette")
    if png:  # a stand-in for the Datashader map: rendering one compiles numba code (slow)
        image = Image.new("RGB", (320, 240), maps.BACKGROUND)
        draw = ImageDraw.Draw(image)
        for (x, y), c in zip(tracks[["pc1", "pc2"]].to_numpy(), tracks["cluster"], strict=True):
            draw.point((160 + 30 * x, 120 - 30 * y), fill=maps.cluster_colors(K)[c])
        (root / "maps").mkdir()
        image.save(root / "maps" / "clusters.png")
    manifest = {
        "job": "cluster-tracks", "finished": "2026-01-01T00:00:00+00:00",
        "config": {"features": list(FEATURES), "k": K}, "versions": {"sonicatlas": "0.1.0"},
        "input": {"url": "data/sample", "files": 1, "rows": 801, "fingerprint": "abc123",
                  "columns": {}},
        "rows": {"rows_read": 801, "rows_accepted": 800, "rows_rejected": 1,
                 "reject_reasons": {"missing value": 1}},
        "k": K, "clusters": [], "metrics": {"inertia": 1234.5, "kmeans_iterations": 7,
                                             "pca_explained_variance_ratio": ratio.tolist()},
        "seconds": {"read + validate": 0.5, "kmeans": 1.25}, "scheduler": "inproc://"}
    (root / "manifest.json").write_text(json.dumps(manifest))
    return root


class _Page(HTMLParser):
    """What the page links to, its headings, chart slots and notes."""

    def __init__(self):
        super().__init__()
        self.sources, self.charts, self.headings, self.images = [], [], [], []
        self._tag = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self._tag = tag
        for key in ("src", "href"):
            if attrs.get(key) is not None:
                self.sources.append((tag, attrs[key]))
        if "data-chart" in attrs:
            self.charts.append(attrs["data-chart"])
        if tag == "img":
            self.images.append(attrs.get("src", ""))

    def handle_data(self, data):
        if self._tag == "h2":
            self.headings.append(data)
        self._tag = None


def parse(path: Path) -> tuple[_Page, str]:
    text = path.read_text(encoding="utf-8")
    page = _Page()
    page.feed(text)
    return page, text


@pytest.fixture(scope="module")
def full_report(tmp_path_factory) -> Path:
    return write_report(str(make_run(tmp_path_factory.mktemp("report") / "run")))


@pytest.mark.slow
def test_report_has_every_section_in_order_and_needs_no_network(full_report):
    page, text = parse(full_report)
    assert page.headings == SECTIONS
    assert page.charts == ["sizes", "radars", "zscores", "boxes", "correlation", "k_sweep",
                           "silhouette"]
    # Nothing is fetched: no script, stylesheet or image from a URL, nor a relative file.
    assert [s for s in page.sources if not s[1].startswith("data:")] == []
    assert not re.search(r"<(script|link)[^>]+(src|href)=", text)
    assert page.images and page.images[0].startswith("data:image/png;base64,")
    profiles = pd.read_parquet(full_report.parent / "summary/cluster_profiles")
    for name in profiles["name"]:
        assert text.count(name) >= 2  # the header and the representative tracks
    assert "missing value: 1" in text and "PC1 " in text and "1,234.5" in text


@pytest.mark.slow
def test_optional_tables_missing_leave_notes_not_charts(tmp_path):
    run = make_run(tmp_path / "run", tables=(), quartiles=False, zscores=False, png=False)
    page, text = parse(write_report(str(run)))
    assert page.charts == ["sizes", "radars", "zscores"]
    assert "Choosing k" not in page.headings  # no sweep ran: no section at all
    assert text.count("Skipped:") == 4  # map, distributions, correlation, representatives
    assert not page.images


@pytest.mark.slow
def test_quartiles_stand_in_for_the_sample_and_the_sample_for_the_correlation(tmp_path):
    run = make_run(tmp_path / "a", tables=("feature_correlation",))
    page, text = parse(write_report(str(run)))
    assert "boxes" in page.charts and "no whiskers" in text
    assert "correlation" in page.charts and "all tracks" in text

    run = make_run(tmp_path / "b", tables=("track_sample",), quartiles=False)
    page, text = parse(write_report(str(run)))
    assert "boxes" in page.charts and "whiskers 1.5 IQR" in text
    assert "correlation" in page.charts and "Computed from the sample of 400 tracks" in text


def test_z_scores_are_derived_when_the_profiles_lack_them(tmp_path):
    run = make_run(tmp_path / "run", tables=())
    profiles = pd.read_parquet(run / "summary/cluster_profiles")
    given = _z_scores(profiles, list(FEATURES))
    derived = _z_scores(profiles.drop(columns=[f"{f}_z" for f in FEATURES]), list(FEATURES))
    np.testing.assert_allclose(derived.to_numpy(), given.to_numpy(), atol=1e-9)


@pytest.mark.slow
def test_report_renders_in_chromium(full_report):
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright not installed")
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not installed (apt-get install chromium)")
    # Plots per chart: one per cluster for the radars, per feature for the boxes.
    expected = {"sizes": 1, "radars": K, "zscores": 1, "boxes": len(FEATURES),
                "correlation": 1, "k_sweep": 4, "silhouette": 1}
    errors, outside = [], []
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--no-first-run"])
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.on("console", lambda m: m.type == "error" and errors.append(m.text))
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("requestfailed", lambda r: errors.append(f"failed: {r.url}"))
            page.on("request", lambda r: r.url.startswith(("file:", "data:"))
                    or outside.append(r.url))
            page.goto(full_report.as_uri())
            page.wait_for_function("() => window.Bokeh && Bokeh.documents.length === 1"
                                   " && Bokeh.documents[0].is_idle", timeout=30_000)
            roots = page.evaluate("() => [...Bokeh.index.roots].map(v => v.model.name)"
                                  ".filter(name => name)")
            # Playwright's CSS selectors see into the shadow roots Bokeh renders into.
            plots = {name: page.locator(f'[data-chart="{name}"] .bk-Canvas').count()
                     for name in expected}
            sizes = page.locator(".bk-Canvas").evaluate_all(
                "canvases => canvases.map(c => c.getBoundingClientRect().width)")
            image_width = page.eval_on_selector("#cluster-map", "img => img.naturalWidth")
            body = page.inner_text("body")
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "report.png"), full_page=True)
        finally:
            browser.close()
    assert errors == [] and outside == []
    assert sorted(roots) == sorted(expected)
    assert plots == expected
    assert len(sizes) == sum(expected.values()) and min(sizes) > 50
    assert image_width > 0
    profiles = pd.read_parquet(full_report.parent / "summary/cluster_profiles")
    assert all(name in body for name in profiles["name"])


@pytest.mark.slow
def test_report_of_a_real_run(tmp_path):
    catalog = write_catalog(blob_tracks(1_500, groups=3, seed=5), tmp_path / "catalog")
    run_job(tmp_path / "run", f"input={catalog}", "k=3")
    page, text = parse(write_report(str(tmp_path / "run")))
    assert page.charts[:3] == ["sizes", "radars", "zscores"]
    assert page.images and "Skipped: the run has no" not in text


def test_sample_boxes_are_tukeys_with_the_outliers_beyond_the_whiskers():
    from bokeh.models import ColumnDataSource

    from sonicatlas.visual.charts import boxes_from_sample

    # cluster 0: 1..100 and one far value; q25 25.75, q75 75.25: whiskers reach 1 and 100
    values = np.r_[np.arange(1.0, 101.0), 400.0, np.arange(10.0, 20.0)]
    sample = pd.DataFrame({"cluster": [0] * 101 + [1] * 10, "energy": values})
    profiles = pd.DataFrame({"cluster": [0, 1], "name": ["a", "b"]})
    grid = boxes_from_sample(sample, profiles, ["energy"], ["#000000", "#ffffff"])
    sources = [m for m in grid.references() if isinstance(m, ColumnDataSource)]
    boxes = next(pd.DataFrame(s.data) for s in sources if "q25" in s.data).set_index("cluster")
    dots = next(pd.DataFrame(s.data) for s in sources if "value" in s.data)
    np.testing.assert_allclose(boxes.loc["a", ["low", "q25", "median", "q75", "high"]],
                               [1.0, *np.percentile(values[:101], [25, 50, 75]), 100.0])
    np.testing.assert_allclose(boxes.loc["b", ["low", "high"]], [10.0, 19.0])
    assert dots["value"].tolist() == [400.0] and dots["cluster"].tolist() == ["a"]
