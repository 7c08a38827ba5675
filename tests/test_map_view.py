"""The cluster map as a reader sees it: a robust view, readable axes, small clusters, colours."""

from __future__ import annotations

import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest
from PIL import ImageColor
from sklearn.decomposition import PCA as SklearnPCA

from sonicatlas.config import MapConfig
from sonicatlas.runs.run_maps import map_grid
from sonicatlas.visual import maps, raster
from sonicatlas.visual.axes import axis_labels


def _lab(hexes):
    """sRGB -> CIELAB (D65), the textbook formulas."""
    rgb = np.array([ImageColor.getrgb(h) for h in hexes]) / 255
    lin = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    xyz = lin @ np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722],
                          [0.0193, 0.1192, 0.9505]]).T / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.column_stack([116 * f[:, 1] - 16, 500 * (f[:, 0] - f[:, 1]),
                            200 * (f[:, 1] - f[:, 2])])


def test_the_first_twelve_cluster_colours_are_far_apart_and_off_the_background():
    lab = _lab(maps.cluster_colors(12))
    gaps = np.linalg.norm(lab[:, None] - lab[None], axis=2)[np.triu_indices(12, 1)]
    assert gaps.min() >= 30  # CIE76 dE; ~2.3 is just noticeable, under ~15 reads as "same"
    background = _lab([maps.BACKGROUND])[0]
    assert np.linalg.norm(lab - background, axis=1).min() >= 40


def test_the_view_is_bounded_by_percentiles_not_by_a_few_outliers():
    rng = np.random.default_rng(2)
    points = pd.DataFrame({"pc1": rng.normal(0, 1, 20_000), "pc2": rng.normal(0, 2, 20_000)})
    points.loc[:4, "pc1"] = 500.0  # five tracks far away
    grid = map_grid(dd.from_pandas(points, npartitions=4), MapConfig())
    low, high = np.percentile(points["pc1"], [0.1, 99.9])
    pad = 0.02 * (high - low)
    assert grid.x_range[1] == pytest.approx(high + pad, rel=0.05)
    assert grid.x_range[0] == pytest.approx(low - pad, rel=0.05)
    assert grid.x_range[1] < 10


def test_axes_say_what_each_component_loads_on():
    rng = np.random.default_rng(0)
    energy = rng.normal(0, 3, 5_000)
    frame = pd.DataFrame({"energy": energy, "loudness": energy + rng.normal(0, 0.5, 5_000),
                          "acousticness": -energy + rng.normal(0, 0.5, 5_000),
                          "tempo": rng.normal(0, 1, 5_000)})
    pca = SklearnPCA().fit(frame)
    table = pd.DataFrame(pca.components_, columns=frame.columns)
    table.insert(0, "explained_variance_ratio", pca.explained_variance_ratio_)
    first, second = axis_labels(table)
    sign = np.sign(pca.components_[0, 0])  # PCA's sign is arbitrary: read it from sklearn
    expected = {1: "+", -1: "-"}
    assert first.startswith(f"PC1 ({pca.explained_variance_ratio_[0]:.0%}): ")
    assert f"{expected[sign]}energy" in first and f"{expected[-sign]}acousticness" in first
    assert second.startswith("PC2") and "tempo" in second


def test_round_ticks():
    assert maps.nice_ticks(-3.2, 7.9) == [-2, 0, 2, 4, 6]
    assert maps.nice_ticks(0.0, 1.0) == pytest.approx([0, 0.2, 0.4, 0.6, 0.8, 1.0])


def test_a_small_cluster_inside_a_large_one_keeps_its_own_colour():
    rng = np.random.default_rng(5)
    big = rng.uniform(-1, 1, (200_000, 2))
    small = rng.normal(0.3, 0.05, (500, 2))  # 0.25% of the tracks, on top of the big one
    points = pd.DataFrame(np.vstack([big, small]), columns=["pc1", "pc2"])
    points["cluster"] = np.r_[np.zeros(len(big)), np.ones(len(small))].astype(np.int64)
    grid = raster.PixelGrid((-1.0, 1.0), (-1.0, 1.0), 200, 200)
    counts = raster.bin_points(points, grid, n_clusters=2)["clusters"]
    image = maps.cluster_image(counts, x_range=grid.x_range, y_range=grid.y_range)
    layout = maps.map_layout([], width=200, height=200, title=False)
    left, top = layout.plot[:2]
    # the small cluster's core: pixels within 0.05 of (0.3, 0.3)
    cx, cy = left + int((0.3 + 1) / 2 * 200), top + int((1 - 0.3) / 2 * 200)
    core = np.asarray(image)[cy - 4:cy + 5, cx - 4:cx + 5].reshape(-1, 3).astype(float)
    colors = np.array([ImageColor.getrgb(c) for c in maps.cluster_colors(2)], dtype=float)
    nearer_small = (np.linalg.norm(core - colors[1], axis=1)
                    < np.linalg.norm(core - colors[0], axis=1))
    assert nearer_small.mean() > 0.8
