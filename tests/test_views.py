"""Silhouette plot, dendrogram and the report's method switch: the run's figures checked
against scikit-learn, SciPy and pandas on the run's own files, and drawn in Chromium."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from bokeh.models import ColumnDataSource
from PIL import Image
from scipy.cluster.hierarchy import cut_tree, linkage
from sklearn.cluster import AgglomerativeClustering
from sklearn.metrics import silhouette_samples

from conftest import CHROMIUM, blob_tracks, open_report, read_table, run_job, write_catalog
from sonicatlas.contract import FEATURES
from sonicatlas.estimators.sampled import Agglomerative
from sonicatlas.estimators.tree import tree_top
from sonicatlas.summaries.silhouette import silhouettes
from sonicatlas.visual.silhouette import labelling, silhouette_chart

K, ROWS, SILHOUETTE_ROWS = 3, 2_000, 1_500
METHODS = ("agglomerative", "dbscan")


def ward_height(sizes: dict, centers: dict, a: int, b: int) -> float:
    """Ward's merge height of two groups from their sizes and centroids (SciPy's scale)."""
    na, nb = sizes[a], sizes[b]
    return float(np.sqrt(2 * na * nb / (na + nb)) * np.linalg.norm(centers[a] - centers[b]))


def check_tree_top(merges: np.ndarray, leaf_centers: np.ndarray, leaf_sizes: np.ndarray,
                   rows: np.ndarray, rtol: float = 1e-9) -> None:
    """The kept merges are SciPy's Ward tree of ``rows`` above its cut into as many groups as
    there are leaves: the same heights, leaves at the groups' pandas centroids, and each
    merge's height Ward's, recomputed from the centroids and sizes it joins."""
    m = len(leaf_sizes)
    reference = linkage(rows, "ward")
    np.testing.assert_allclose(merges[:, 2], reference[-(m - 1):, 2], rtol=rtol)
    groups = cut_tree(reference, n_clusters=m).ravel()
    frame = pd.DataFrame(rows).assign(group=groups)
    centers = frame.groupby("group").mean().to_numpy()
    sizes = frame.groupby("group").size().to_numpy()
    # each kept leaf is one of SciPy's groups: same centroid, same size
    match = [int(np.argmin(np.linalg.norm(centers - c, axis=1))) for c in leaf_centers]
    assert sorted(match) == list(range(m))
    np.testing.assert_allclose(centers[match], leaf_centers, atol=1e-6)
    assert (sizes[match] == leaf_sizes).all()
    size = dict(enumerate(leaf_sizes.astype(float)))
    center = dict(enumerate(centers[match]))
    for i, (a, b, height, n) in enumerate(merges):
        a, b = int(a), int(b)
        np.testing.assert_allclose(height, ward_height(size, center, a, b), rtol=1e-5)
        size[m + i] = size[a] + size[b]
        center[m + i] = (size[a] * center[a] + size[b] * center[b]) / size[m + i]
        assert n == size[m + i]


def test_the_top_of_a_ward_tree_is_wards_merges_over_the_groups_centroids():
    rng = np.random.default_rng(3)
    rows = np.concatenate([rng.normal(c, 0.5, (80, 4)) for c in (0, 3, 6)])
    reference = linkage(rows, "ward")
    labels = cut_tree(reference, n_clusters=3).ravel()
    top = tree_top(reference, rows, labels, 12)
    check_tree_top(top.linkage, top.leaf_centers, top.leaf_sizes, rows)
    # cutting the kept tree into 3 gives the tree's 3 clusters, leaf by leaf
    counts = np.ones(23)  # leaves under each node, as SciPy checks them
    for i, (a, b) in enumerate(top.linkage[:, :2].astype(int)):
        counts[12 + i] = counts[a] + counts[b]
    kept = cut_tree(np.column_stack([top.linkage[:, :3], counts[12:]]), n_clusters=3)
    assert pd.crosstab(kept.ravel(), top.leaf_labels).gt(0).sum(axis=1).eq(1).all()


def test_shared_distance_silhouettes_equal_scikit_learns_for_every_labelling():
    rng = np.random.default_rng(1)
    rows = rng.normal(size=(700, 6))
    plain = rng.integers(0, 5, 700)
    noisy = np.where(rng.random(700) < 0.1, -1, rng.integers(3, 9, 700))  # ids not from 0
    single = plain.copy()
    single[0] = 7  # a cluster of one track scores 0
    one = np.zeros(700, dtype=int)  # one cluster: no silhouette
    got = silhouettes(rows, [plain, noisy, single, one])
    for labels, values in zip((plain, noisy, single), got, strict=False):
        kept = labels >= 0
        np.testing.assert_allclose(values[kept], silhouette_samples(rows[kept], labels[kept]),
                                   rtol=1e-9, atol=1e-9)
        assert np.isnan(values[~kept]).all()
    assert got[2][0] == 0.0 and np.isnan(got[3]).all()


def test_agglomerative_keeps_scipys_ward_tree_of_its_sample():
    rows = np.random.default_rng(0).normal(size=(300, 5))
    fitted = Agglomerative(n_clusters=4, sample_size=10_000).fit(rows)
    np.testing.assert_allclose(fitted.linkage_matrix_, linkage(rows, "ward"))
    assert len(fitted.tree_top_.leaf_sizes) == 30


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("views")
    catalog = write_catalog(blob_tracks(ROWS, groups=K, seed=5), root / "catalog")
    run_job(root / "run", f"input={catalog}", f"k={K}", f"compare=[{', '.join(METHODS)}]",
            f"summary.silhouette_rows={SILHOUETTE_ROWS}")
    return root / "run"


@pytest.fixture(scope="module")
def tracks(run):
    """Every track's float32 z-scores (``query/``) beside its labels (``assignments/``)."""
    query, assignments = read_table(run / "query"), read_table(run / "assignments")
    assert (query["track_id"].to_numpy() == assignments["track_id"].to_numpy()).all()
    return query.merge(assignments.drop(columns=list(FEATURES), errors="ignore"),
                       on="track_id")


@pytest.fixture(scope="module")
def scored(run):
    """``summary/silhouette``: the sampled tracks and their silhouettes."""
    return read_table(run / "summary/silhouette")


@pytest.mark.slow
def test_silhouette_sample_is_drawn_from_the_track_sample(run, scored):
    sample = read_table(run / "summary/track_sample")
    assert len(scored) == SILHOUETTE_ROWS == scored["track_id"].nunique()
    assert set(scored["track_id"]) <= set(sample["track_id"])


@pytest.mark.slow
@pytest.mark.parametrize("method", [None, *METHODS])
def test_silhouettes_equal_scikit_learns_on_the_same_tracks(run, tracks, scored, method):
    label = "cluster" if method is None else f"cluster_{method}"
    value = "silhouette" if method is None else f"silhouette_{method}"
    rows = tracks.set_index("track_id").loc[scored["track_id"]]
    labels = rows[label].to_numpy()
    assert (scored[label].to_numpy() == labels).all()
    kept = labels >= 0  # a density method's noise has no silhouette
    expected = silhouette_samples(rows.loc[kept, list(FEATURES)].to_numpy(np.float64),
                                  labels[kept])
    np.testing.assert_allclose(scored[value].to_numpy()[kept], expected, rtol=1e-9,
                               atol=1e-9)
    assert scored[value][~kept].isna().all()
    # the profiles' per-cluster means
    profiles = read_table(run / ("summary/cluster_profiles" if method is None
                                 else f"summary/cluster_profiles_{method}"))
    means = pd.Series(expected).groupby(labels[kept]).mean()
    shown = profiles.set_index("cluster")["silhouette"]
    np.testing.assert_allclose(shown.reindex(means.index), means, rtol=1e-9, atol=1e-9)
    assert shown[shown.index < 0].isna().all()
    # the plot's bands: each cluster's values sorted from the largest down
    chart = silhouette_chart(**labelling(scored, profiles, method))
    bands = {s.name.split(":")[1]: np.asarray(s.data["value"]) for s in chart.references()
             if isinstance(s, ColumnDataSource) and (s.name or "").startswith("silhouette:")}
    assert sorted(map(int, bands)) == sorted(means.index)
    for cluster, values in bands.items():
        mine = np.sort(expected[labels[kept] == int(cluster)])[::-1]
        np.testing.assert_allclose(values, mine, rtol=1e-9, atol=1e-9)


@pytest.mark.slow
def test_silhouette_png_is_written(run):
    with Image.open(run / "maps/silhouette.png") as image:
        assert image.width >= 600 and image.height >= 400


@pytest.mark.slow
def test_dendrogram_is_wards_tree_of_the_agglomerative_sample(run, tracks):
    # the sample is every track (2,000 rows < the method's 10,000-row sample), in order
    rows = tracks[list(FEATURES)].to_numpy(np.float64)
    merges = read_table(run / "summary/dendrogram")
    leaves = read_table(run / "summary/dendrogram_leaves").sort_values("leaf")
    check_tree_top(merges[["left", "right", "height", "size"]].to_numpy(np.float64),
                   leaves[list(FEATURES)].to_numpy(), leaves["size"].to_numpy(), rows,
                   rtol=1e-5)
    # each leaf's cluster is scikit-learn's Ward label of its tracks
    reference = AgglomerativeClustering(n_clusters=K).fit(rows).labels_
    groups = cut_tree(linkage(rows, "ward"), n_clusters=len(leaves)).ravel()
    centers = pd.DataFrame(rows).groupby(groups).mean().to_numpy()
    for leaf in leaves.itertuples(index=False):
        group = np.argmin(np.linalg.norm(centers - np.array([getattr(leaf, f)
                                                              for f in FEATURES]), axis=1))
        assert set(reference[groups == group]) == {leaf.cluster}


SHOWN_SIZES = """() => {
  const tabs = Bokeh.documents[0].get_model_by_name("methods");
  const title = tabs.tabs[tabs.active].title;
  const bars = Bokeh.documents[0].get_model_by_name("sizes-data:" + title);
  return [title, Array.from(bars.data.name), Array.from(bars.data.size)];
}"""


@pytest.mark.slow
def test_report_shows_silhouette_methods_and_dendrogram_and_switches(run, tracks):
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright not installed")
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not installed (apt-get install chromium)")
    errors, outside, shown, visible = [], [], {}, {}
    with sync_api.sync_playwright() as playwright:
        browser, page = open_report(playwright, run / "report.html", errors, outside)
        try:
            drawn = {name: page.locator(f'[data-chart="{name}"] .bk-Canvas').count()
                     for name in ("silhouette", "methods", "dendrogram")}
            titles = page.locator('[data-chart="methods"] .bk-tab').all_inner_texts()
            for title in titles:
                page.locator('[data-chart="methods"] .bk-tab', has_text=title).click()
                page.wait_for_function("t => { const m = Bokeh.documents[0].get_model_by_name"
                                       "('methods'); return m.tabs[m.active].title === t }",
                                       arg=title)
                shown[title] = page.evaluate(SHOWN_SIZES)
                canvases = page.locator('[data-chart="methods"] .bk-Canvas')
                visible[title] = sum(canvases.nth(i).is_visible()
                                     for i in range(canvases.count()))
        finally:
            browser.close()
    assert errors == [] and outside == []
    assert drawn["silhouette"] == 1 and drawn["dendrogram"] == 1
    assert titles == ["kmeans (the run's clusters)", *METHODS]
    assert drawn["methods"] == 3 * len(titles)  # sizes, z-scores, silhouette per tab
    assert all(count == 3 for count in visible.values())  # only the chosen tab's charts
    for title in titles:
        column = "cluster" if title.startswith("kmeans") else f"cluster_{title}"
        profiles = read_table(run / ("summary/cluster_profiles" if column == "cluster"
                                     else f"summary/cluster_profiles_{title}"))
        names = profiles.set_index("cluster")["name"]
        counts = tracks[column].value_counts()
        got_title, got_names, got_sizes = shown[title]
        assert got_title == title
        assert dict(zip(got_names, got_sizes, strict=True)) == {
            names[c]: int(n) for c, n in counts.items()}


@pytest.mark.slow
def test_dendrogram_of_the_runs_own_agglomerative_clusters(tmp_path):
    catalog = write_catalog(blob_tracks(900, groups=K, seed=2), tmp_path / "catalog")
    run_job(tmp_path / "run", f"input={catalog}", f"k={K}", "algorithm=agglomerative")
    run = tmp_path / "run"
    rows = read_table(run / "query")[list(FEATURES)].to_numpy(np.float64)
    merges = read_table(run / "summary/dendrogram")
    leaves = read_table(run / "summary/dendrogram_leaves").sort_values("leaf")
    check_tree_top(merges[["left", "right", "height", "size"]].to_numpy(np.float64),
                   leaves[list(FEATURES)].to_numpy(), leaves["size"].to_numpy(), rows,
                   rtol=1e-5)
    # the leaves' clusters are the run's own: the same ids as its cluster column
    counts = read_table(run / "assignments")["cluster"].value_counts()
    by_leaf = leaves.groupby("cluster")["size"].sum()
    assert sorted(by_leaf.index) == sorted(counts.index) == list(range(K))
    assert 'data-chart="dendrogram"' in (run / "report.html").read_text()
