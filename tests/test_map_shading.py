"""Map pixels: the occupied-pixel shading gives what Datashader's tf.shade gives on the whole grid.

The reference in each test is Datashader itself, called as the maps called it: the weighted
counts made with xarray, then ``tf.shade``, ``tf.dynspread`` and Pillow's "over".
"""

from __future__ import annotations

import io
import zlib

import datashader.transfer_functions as tf
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from PIL import Image, ImageColor

from sonicatlas.visual import maps, raster
from sonicatlas.visual.png import png_bytes
from sonicatlas.visual.shading import cluster_rgba, density_rgba, linear_rgba
from sonicatlas.visual.spreading import dynspread

CMAP = list(maps.DENSITY_CMAP)


def _visible(rgba: np.ndarray) -> np.ndarray:
    """Bytes r, g, b, a per pixel, colour zeroed where transparent (it is never drawn)."""
    pixels = rgba.view(np.uint8).reshape(*rgba.shape, 4).copy()
    pixels[pixels[..., 3] == 0] = 0
    return pixels


def _weights(cube: np.ndarray) -> np.ndarray:
    totals = cube.sum(axis=(0, 1))
    return totals.max() / np.maximum(totals, 1)


def _reference_clusters(cube: np.ndarray, colors, weights=None) -> np.ndarray:
    counts = xr.DataArray(cube, dims=("pc2", "pc1", "cluster"),
                          coords={"cluster": np.arange(cube.shape[2])})
    if weights is not None:
        counts = np.ceil(counts * xr.DataArray(weights, dims="cluster")).astype(cube.dtype)
    return tf.shade(counts, color_key=colors, how="eq_hist", min_alpha=100,
                    rescale_discrete_levels=True).data


def _sparse_cube(rng, shape=(70, 90), sizes=(40_000, 9_000, 700, 60, 0)) -> np.ndarray:
    """Clusters of very different sizes, each a blob somewhere on the grid; most pixels empty."""
    cube = np.zeros((*shape, len(sizes)), dtype=np.uint32)
    for i, size in enumerate(sizes):
        y = np.clip(rng.normal(rng.uniform(10, shape[0] - 10), 6, size), 0, shape[0] - 1)
        x = np.clip(rng.normal(rng.uniform(10, shape[1] - 10), 8, size), 0, shape[1] - 1)
        np.add.at(cube, (y.astype(int), x.astype(int), i), 1)
    return cube


def test_cluster_colours_equal_datashaders_with_each_cluster_weighted_by_its_size():
    rng = np.random.default_rng(0)
    cube = _sparse_cube(rng)
    colors = maps.cluster_colors(cube.shape[2])
    weights = _weights(cube)
    assert (cube.sum(axis=2) == 0).mean() > 0.3  # a map with empty pixels, as maps are
    expected = _visible(_reference_clusters(cube, colors, weights))
    np.testing.assert_array_equal(_visible(cluster_rgba(cube, colors, weights=weights)),
                                  expected)
    np.testing.assert_array_equal(_visible(cluster_rgba(cube, colors)),
                                  _visible(_reference_clusters(cube, colors)))


def test_cluster_colours_with_counts_beyond_float32s_whole_numbers_are_within_one_level():
    rng = np.random.default_rng(1)
    cube = _sparse_cube(rng) * np.uint32(4_000)  # sums past 2**24: float32 rounds them
    colors = maps.cluster_colors(cube.shape[2])
    weights = _weights(cube)
    got = _visible(cluster_rgba(cube, colors, weights=weights)).astype(int)
    expected = _visible(_reference_clusters(cube, colors, weights)).astype(int)
    assert np.abs(got - expected).max() <= 1


def test_a_grid_with_no_empty_pixel_is_shaded_as_datashader_shades_it():
    rng = np.random.default_rng(2)
    cube = rng.integers(1, 50, (20, 30, 3)).astype(np.uint32)
    colors = maps.cluster_colors(3)
    np.testing.assert_array_equal(
        _visible(cluster_rgba(cube, colors, weights=_weights(cube))),
        _visible(_reference_clusters(cube, colors, _weights(cube))))


def test_cluster_colours_known_answer():
    cube = np.zeros((2, 3, 2), dtype=np.uint32)
    cube[0, 0] = [2, 0]  # only cluster 0
    cube[0, 1] = [1, 3]  # a mix, the densest pixel
    cube[1, 2] = [0, 1]  # only cluster 1, the sparsest
    colors = ["#E69F00", "#56B4E9"]
    pixels = _visible(cluster_rgba(cube, colors, min_alpha=100))
    c0, c1 = (np.array(ImageColor.getrgb(c)) for c in colors)
    assert pixels[0, 0, :3].tolist() == c0.tolist()
    assert pixels[1, 2, :3].tolist() == c1.tolist()
    assert pixels[0, 1, :3].tolist() == ((1 * c0 + 3 * c1) // 4).tolist()  # truncated mean
    assert pixels[0, 2].tolist() == [0, 0, 0, 0]  # empty: transparent
    alpha = pixels[..., 3]
    assert alpha[0, 1] == 255 and alpha[1, 2] < alpha[0, 0] < alpha[0, 1]


@pytest.mark.parametrize("scale", [1, 1_000])  # distinct counts < 65536, then binned
def test_density_colours_equal_datashaders(scale):
    rng = np.random.default_rng(3)
    counts = _sparse_cube(rng).sum(axis=2) * np.uint32(scale)
    expected = tf.shade(xr.DataArray(counts, dims=("y", "x")), cmap=CMAP, how="eq_hist",
                        min_alpha=100, rescale_discrete_levels=True).data
    np.testing.assert_array_equal(_visible(density_rgba(counts, CMAP)), _visible(expected))


def test_density_of_float_values_with_missing_pixels_equals_datashaders():
    rng = np.random.default_rng(4)
    values = np.where(rng.random((40, 50)) < 0.5, rng.gamma(2.0, 3.0, (40, 50)), np.nan)
    expected = tf.shade(xr.DataArray(values, dims=("y", "x")), cmap=CMAP, how="eq_hist",
                        rescale_discrete_levels=True).data
    np.testing.assert_array_equal(_visible(density_rgba(values, CMAP)), _visible(expected))


@pytest.mark.parametrize("span", ["data", "narrower", "one value"])
def test_feature_colours_equal_datashaders_linear_shading(span):
    rng = np.random.default_rng(5)
    means = np.where(rng.random((60, 80)) < 0.4, rng.normal(120.0, 30.0, (60, 80)), np.nan)
    if span == "one value":
        means[~np.isnan(means)] = 118.5
    low, high = float(np.nanmin(means)), float(np.nanmax(means))
    if span == "narrower":  # values beyond the span take its ends' colours
        low, high = low + 20.0, high - 20.0
    expected = tf.shade(xr.DataArray(means, dims=("y", "x")), cmap=CMAP, how="linear",
                        span=(low, high)).data
    np.testing.assert_array_equal(_visible(linear_rgba(means, CMAP, (low, high))),
                                  _visible(expected))
    float32 = means.astype(np.float32)
    expected32 = tf.shade(xr.DataArray(float32, dims=("y", "x")), cmap=CMAP, how="linear",
                          span=(low, high)).data
    np.testing.assert_array_equal(_visible(linear_rgba(float32, CMAP, (low, high))),
                                  _visible(expected32))


def test_nothing_to_shade_is_all_transparent():
    assert not cluster_rgba(np.zeros((5, 6, 3), np.uint32), maps.cluster_colors(3)).any()
    assert not density_rgba(np.zeros((5, 6), np.uint32), CMAP).any()
    assert not linear_rgba(np.full((5, 6), np.nan), CMAP, (0.0, 1.0)).any()


def _over_background(img) -> np.ndarray:
    rgba = img.to_pil()
    return np.asarray(Image.alpha_composite(Image.new("RGBA", rgba.size, maps.BACKGROUND),
                                            rgba).convert("RGB"))


def _plot_area(image: Image.Image, width: int, height: int, title: bool) -> np.ndarray:
    left, top, right, bottom = maps.map_layout([], width=width, height=height,
                                               title=title).plot
    return np.asarray(image)[top:bottom, left:right]


@pytest.mark.parametrize("tracks", [300, 60_000])  # sparse (points spread), dense
def test_composed_maps_show_the_pixels_datashader_shades(tracks):
    rng = np.random.default_rng(6)
    points = pd.DataFrame({"pc1": rng.normal(0, 1, tracks), "pc2": rng.normal(0, 1, tracks),
                           "energy": rng.uniform(0, 1, tracks)})
    points["cluster"] = rng.choice(4, tracks, p=[0.7, 0.2, 0.09, 0.01])
    grid = raster.PixelGrid((-3.0, 3.0), (-3.0, 3.0), 160, 120)
    bins = raster.bin_points(points, grid, n_clusters=4, features=["energy"])
    frame = {"x_range": grid.x_range, "y_range": grid.y_range}

    def spread(img):
        return _over_background(tf.dynspread(img, threshold=0.5, max_px=3))

    cube = bins["clusters"].to_numpy()
    clusters = spread(tf.Image(_reference_clusters(cube, maps.cluster_colors(4),
                                                   _weights(cube)), dims=("y", "x")))
    np.testing.assert_array_equal(
        _plot_area(maps.cluster_image(bins["clusters"], **frame), 160, 120, False), clusters)
    images = maps.feature_images(bins, ["energy"], **frame)
    density = spread(tf.shade(bins["count"], cmap=CMAP, how="eq_hist", min_alpha=100,
                              rescale_discrete_levels=True))
    np.testing.assert_array_equal(_plot_area(images["density"], 160, 120, True), density)
    means = bins["energy"]
    energy = spread(tf.shade(means, cmap=CMAP, how="linear",
                             span=(float(means.min()), float(means.max()))))
    np.testing.assert_array_equal(_plot_area(images["energy"], 160, 120, True), energy)


@pytest.mark.parametrize("share", [0.002, 0.005, 0.02, 0.5])  # spread by 3, 2, 1, 0 pixels
def test_dynspread_equals_datashaders(share):
    rng = np.random.default_rng(8)
    shape = (50, 70)
    pixels = rng.integers(0, 256, (*shape, 4), dtype=np.uint8)
    pixels[..., 3] = rng.integers(40, 256, shape)  # translucent points overlap when spread
    pixels[rng.random(shape) >= share] = 0
    rgba = pixels.view(np.uint32)[..., 0]
    expected = tf.dynspread(tf.Image(rgba, dims=("y", "x")), threshold=0.5, max_px=3).data
    np.testing.assert_array_equal(dynspread(rgba, threshold=0.5, max_px=3), expected)


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L", "P"])
def test_png_bytes_decode_to_the_same_pixels(mode):
    rng = np.random.default_rng(7)
    image = Image.fromarray(rng.integers(0, 256, (37, 53, 4), dtype=np.uint8), "RGBA")
    image = image.convert(mode)
    decoded = Image.open(io.BytesIO(png_bytes(image)))
    assert decoded.format == "PNG" and decoded.mode == mode and decoded.size == image.size
    np.testing.assert_array_equal(np.asarray(decoded), np.asarray(image))


def test_png_rows_are_unfiltered_and_deflated():
    image = Image.new("RGB", (4, 3), "#102030")
    data = png_bytes(image)
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    start = data.index(b"IDAT") + 4
    length = int.from_bytes(data[start - 8:start - 4], "big")
    rows = zlib.decompress(data[start:start + length])
    assert rows == (b"\x00" + bytes([0x10, 0x20, 0x30]) * 4) * 3  # filter byte 0, raw RGB
