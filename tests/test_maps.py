"""Datashader cluster maps: palette, aggregates, pixel colours, legend and PNG output.

The maps are made as the jobs make them: points binned by ``raster.bin_points``, then drawn
by ``maps.cluster_image``, ``density_image`` and ``feature_images``.
"""

from __future__ import annotations

import colorsys
import re

import dask.dataframe as dd
import fsspec
import numpy as np
import pandas as pd
import pytest
from PIL import Image, ImageColor

from sonicatlas.visual.maps import (
    BACKGROUND,
    CLUSTER_COLORS,
    cluster_colors,
    cluster_image,
    density_image,
    feature_images,
    map_layout,
    save_png,
)
from sonicatlas.visual.raster import PixelGrid, bin_points

W, H = 200, 160
UNIT = (0.0, 1.0)
BG = np.array(ImageColor.getrgb(BACKGROUND))


def _points(x, y, cluster) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "pc1": np.asarray(x, dtype="float32"),
            "pc2": np.asarray(y, dtype="float32"),
            "cluster": np.asarray(cluster, dtype="int64"),
        }
    )


def _cluster_counts(points, n_clusters, width=W, height=H):
    return bin_points(points, PixelGrid(UNIT, UNIT, width, height),
                      n_clusters=n_clusters)["clusters"]


def _cluster_map(points, n_clusters, **labels) -> Image.Image:
    return cluster_image(_cluster_counts(points, n_clusters), x_range=UNIT, y_range=UNIT,
                         **labels)


def _plot_area(image: Image.Image, title: bool = False, labels=()) -> np.ndarray:
    left, top, right, bottom = map_layout(list(labels), width=W, height=H, title=title).plot
    return np.asarray(image)[top:bottom, left:right].astype(int)


def _hue(rgb) -> float:
    return colorsys.rgb_to_hsv(*(np.asarray(rgb) / 255))[0] * 360


def _hue_distance(a: float, b: float) -> float:
    return min(abs(a - b), 360 - abs(a - b))


def test_palette_is_fixed_distinct_and_wraps():
    assert len(CLUSTER_COLORS) >= 20
    assert len(set(CLUSTER_COLORS)) == len(CLUSTER_COLORS)
    assert all(re.fullmatch(r"#[0-9A-Fa-f]{6}", c) for c in CLUSTER_COLORS)
    colors = cluster_colors(len(CLUSTER_COLORS) + 3)
    assert colors[: len(CLUSTER_COLORS)] == list(CLUSTER_COLORS)
    assert colors[len(CLUSTER_COLORS) + 2] == CLUSTER_COLORS[2]
    assert cluster_colors(0) == []


def test_aggregate_matches_value_counts_for_pandas_and_dask():
    rng = np.random.default_rng(1)
    n, k = 5_000, 6
    labels = rng.integers(0, k - 1, n)  # cluster k-1 stays empty
    df = _points(rng.random(n), rng.random(n), labels)
    agg = _cluster_counts(df, k, width=50, height=40)
    lazy = _cluster_counts(dd.from_pandas(df, npartitions=4), k, width=50, height=40)

    assert agg.dims == ("pc2", "pc1", "cluster")
    assert list(agg.coords["cluster"].values) == list(range(k))
    assert int(agg.sum()) == n
    expected = pd.Series(labels).value_counts().reindex(range(k), fill_value=0)
    assert agg.sum(["pc2", "pc1"]).values.tolist() == expected.tolist()
    np.testing.assert_array_equal(agg.values, lazy.values)


def test_labels_outside_the_clusters_are_not_counted():
    df = _points([0.5] * 4, [0.5] * 4, [-1, 0, 1, 7])
    agg = _cluster_counts(df, 2, width=10, height=10)
    assert agg.sum(["pc2", "pc1"]).values.tolist() == [1, 1]


def test_clusters_in_disjoint_quadrants_get_their_own_colour():
    # Cluster 0 fills the bottom-left quadrant, cluster 1 the top-right; each stays well clear
    # of the midlines so spreading cannot carry it across.
    rng = np.random.default_rng(2)
    n = 4_000
    lo, hi = rng.uniform(0.1, 0.4, (2, n)), rng.uniform(0.6, 0.9, (2, n))
    df = _points(
        np.r_[lo[0], hi[0]], np.r_[lo[1], hi[1]], np.r_[np.zeros(n), np.ones(n)].astype(int)
    )
    image = _cluster_map(df, 2)
    plot = _plot_area(image, labels=["cluster 0", "cluster 1"])
    hue0, hue1 = (_hue(ImageColor.getrgb(c)) for c in cluster_colors(2))
    drawn = np.abs(plot - BG).max(axis=2) > 0
    quadrant = {
        "bottom-left": (slice(H // 2, H), slice(0, W // 2)),
        "top-right": (slice(0, H // 2), slice(W // 2, W)),
        "top-left": (slice(0, H // 2), slice(0, W // 2)),
        "bottom-right": (slice(H // 2, H), slice(W // 2, W)),
    }
    for name, hue in (("bottom-left", hue0), ("top-right", hue1)):
        pixels = plot[quadrant[name]][drawn[quadrant[name]]]
        assert len(pixels) > 1_000, name
        hues = np.array([_hue(p) for p in pixels])
        assert max(_hue_distance(h, hue) for h in hues) < 10, name
    for name in ("top-left", "bottom-right"):
        assert not drawn[quadrant[name]].any(), name


def test_small_catalog_is_visible():
    rng = np.random.default_rng(3)
    n = 1_000
    df = _points(rng.random(n), rng.random(n), rng.integers(0, 8, n))
    image = _cluster_map(df, 8)
    plot = _plot_area(image, labels=[f"cluster {i}" for i in range(8)])
    visible = np.abs(plot - BG).max(axis=2) > 30
    assert visible.sum() > 800


def test_legend_has_one_swatch_per_cluster_in_its_colour():
    k, title = 30, "thirty clusters"  # 30 rows do not fit 160 px: the legend wraps
    rng = np.random.default_rng(4)
    df = _points(rng.random(500), rng.random(500), rng.integers(0, k, 500))
    image = _cluster_map(df, k, title=title)
    layout = map_layout([f"cluster {i}" for i in range(k)], width=W, height=H, title=True)
    assert image.size == layout.size
    assert len(layout.swatches) == k
    assert len({box[0] for box in layout.swatches}) > 1
    pixels = image.load()
    for (x0, y0, x1, y1), color in zip(layout.swatches, cluster_colors(k), strict=True):
        assert x0 >= layout.plot[2] and x1 <= image.width and y1 <= image.height
        assert pixels[(x0 + x1) // 2, (y0 + y1) // 2] == ImageColor.getrgb(color)


def test_sizes_and_names_go_into_the_legend():
    df = _points([0.2, 0.8], [0.5, 0.5], [0, 1])
    plain = _cluster_map(df, 2)
    sized = _cluster_map(df, 2, names=["calm", "loud"], sizes=[1_234_567, 1])
    assert sized.width > plain.width  # "calm · 1,234,567 (100.0%)" is wider than "cluster 0"
    with pytest.raises(ValueError, match="one entry per cluster"):
        _cluster_map(df, 2, names=["only one"])


def test_empty_input_renders_a_blank_plot():
    image = _cluster_map(_points([], [], []), 3)
    assert (_plot_area(image, labels=[f"cluster {i}" for i in range(3)]) == BG).all()


def test_density_map_has_no_legend():
    rng = np.random.default_rng(5)
    df = _points(rng.normal(0.5, 0.1, 2_000), rng.normal(0.5, 0.1, 2_000), np.zeros(2_000))
    counts = bin_points(dd.from_pandas(df, npartitions=2), PixelGrid(UNIT, UNIT, W, H))["count"]
    image = density_image(counts, x_range=UNIT, y_range=UNIT)
    assert image.size == map_layout([], width=W, height=H, title=False).size
    assert (np.abs(_plot_area(image) - BG).max(axis=2) > 30).sum() > 500


def test_save_png_round_trips(tmp_path):
    image = Image.new("RGB", (37, 23), BACKGROUND)
    path = tmp_path / "nested" / "map.png"
    save_png(image, str(path))
    with Image.open(path) as saved:
        assert saved.format == "PNG" and saved.size == (37, 23)

    save_png(image, "memory://maps/map.png")
    with fsspec.open("memory://maps/map.png", "rb") as f, Image.open(f) as saved:
        assert saved.format == "PNG" and saved.size == (37, 23)


def test_feature_means_per_pixel_match_a_pandas_binning():
    rng = np.random.default_rng(3)
    points = pd.DataFrame({"pc1": rng.uniform(0, 1, 5_000).astype(np.float32),
                           "pc2": rng.uniform(0, 1, 5_000).astype(np.float32),
                           "energy": rng.random(5_000), "tempo": rng.uniform(60, 200, 5_000)})
    agg = bin_points(points, PixelGrid(UNIT, UNIT, 4, 2), features=["energy", "tempo"])
    # reference: the same 4 x 2 grid by hand
    col = np.minimum((points["pc1"] * 4).astype(int), 3)
    row = np.minimum((points["pc2"] * 2).astype(int), 1)
    expected = points.groupby([row, col])[["energy", "tempo"]].mean()
    for (r, c), values in expected.iterrows():
        assert float(agg["energy"][r, c]) == pytest.approx(values["energy"], rel=1e-6)
        assert float(agg["tempo"][r, c]) == pytest.approx(values["tempo"], rel=1e-6)
    assert int(agg["count"].sum()) == len(points)
    binned = bin_points(points, PixelGrid(UNIT, UNIT, 200, 150), features=["energy", "tempo"])
    images = feature_images(binned, ["energy", "tempo"], x_range=UNIT, y_range=UNIT)
    assert set(images) == {"density", "energy", "tempo"} and images["tempo"].width > 200
