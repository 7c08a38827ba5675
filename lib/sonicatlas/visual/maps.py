"""Datashader maps of clustered tracks in PCA space, composed into a captioned image with Pillow.

The plot area is exactly ``width`` x ``height`` canvas pixels on a dark background; the title,
axis labels and legend are drawn around it, so the image is larger than the plot.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import fsspec
import numpy as np
import xarray as xr
from PIL import Image, ImageDraw, ImageFont

from sonicatlas.visual.png import png_bytes
from sonicatlas.visual.shading import cluster_rgba, density_rgba, linear_rgba
from sonicatlas.visual.spreading import dynspread

#: Okabe-Ito's orange, sky blue, green and yellow, then each colour the farthest in CIELAB from
#: all before it (greedily, from Okabe-Ito, Paul Tol's and ColorBrewer's sets), none near the
#: dark background: any two of the first 12 differ by at least 35 dE (CIE76), where blues
#: such as #56B4E9 and #88CCEE, 14 dE apart, read as one.
CLUSTER_COLORS: tuple[str, ...] = (
    "#E69F00", "#56B4E9", "#009E73", "#F0E442", "#EE3377", "#6A3D9A", "#CC3311", "#FFFFFF",
    "#FB9A99", "#B2DF8A", "#33A02C", "#999999", "#882255", "#BC80BD", "#999933", "#8DD3C7",
    "#FDBF6F", "#FF7F00", "#0072B2", "#FCCDE5",
)  # fmt: skip
BACKGROUND = "#111111"
TEXT_COLOR = "#E8E8E8"
#: Inferno from 20 % up: its darkest stops would vanish into the background.
DENSITY_CMAP: tuple[str, ...] = ("#4B0C6B", "#A52C60", "#ED6925", "#FBB61A", "#FCFFA4")

_FONT, _TITLE_FONT, _TICK_FONT = 14, 18, 12
_PAD, _SWATCH, _ROW, _MAX_LABEL = 10, 14, 22, 320
_MARGIN_LEFT, _MARGIN_BOTTOM = 64, 44
#: Alpha of the sparsest occupied pixels of the cluster map (the densest get 255): with
#: eq_hist's rescaled discrete levels, a small catalog's single-track pixels do not fade into
#: the background.
_MIN_ALPHA = 100

Box = tuple[int, int, int, int]  # (left, top, right, bottom), right and bottom exclusive


def cluster_colors(n_clusters: int) -> list[str]:
    """Colour of each cluster: ``CLUSTER_COLORS[i % len(CLUSTER_COLORS)]`` for ``i < n_clusters``.

    Parameters
    ----------
    n_clusters : int
        Number of clusters.

    Returns
    -------
    list of str
        Hex colours; cluster ``i`` gets the same colour in every figure.
    """
    return [CLUSTER_COLORS[i % len(CLUSTER_COLORS)] for i in range(n_clusters)]


def cluster_image(counts: xr.DataArray, *, x_range, y_range, names: list[str] | None = None,
                  sizes: list[int] | None = None, title: str | None = None,
                  axes: tuple[str, str] = ("PC1", "PC2"), note: str = "") -> Image.Image:
    """Map of every point coloured by cluster, with axis labels, title and legend.

    Parameters
    ----------
    counts : xarray.DataArray
        Points per pixel and cluster, dims ``(pc2, pc1, cluster)``: the ``clusters`` of
        :func:`sonicatlas.visual.raster.bin_points`. The plot area is its size in pixels;
        cluster ``i`` is drawn in ``cluster_colors(n_clusters)[i]``.
    x_range, y_range : tuple of float
        Data bounds of the plot area.
    names : list of str, optional
        Legend label per cluster; default ``"cluster i"``.
    sizes : list of int, optional
        Track count per cluster, shown in the legend with its share of the total.
    title : str, optional
        Drawn above the plot (Pillow's bundled font; it lacks some glyphs, e.g. em dashes).
    axes : tuple of str
        The axes' labels, e.g. what each principal component loads on.
    note : str
        A line under the plot, e.g. how many tracks lie outside the view.

    Returns
    -------
    PIL.Image.Image
        RGB image laid out as :func:`map_layout` says.

    Notes
    -----
    Each cluster's counts are divided by its share of the tracks before shading, so that a
    pixel's colour says which cluster is densest there for its size: a small cluster stays
    visible where a large one is spread thin over it, instead of being blended away.
    """
    n_clusters = counts.sizes["cluster"]
    labels = list(names) if names is not None else [f"cluster {i}" for i in range(n_clusters)]
    if len(labels) != n_clusters or (sizes is not None and len(sizes) != n_clusters):
        raise ValueError(f"names and sizes need one entry per cluster ({n_clusters})")
    if sizes is not None:
        total = sum(sizes) or 1  # all-empty clusters show 0.0% rather than fail
        labels = [
            f"{n} · {s:,} ({100 * s / total:.1f}%)" for n, s in zip(labels, sizes, strict=True)
        ]
    colors = cluster_colors(n_clusters)
    cube = counts.transpose(..., "cluster").to_numpy()
    totals = cube.sum(axis=(0, 1))
    # relative density per cluster, on the largest cluster's scale; whole counts, at least 1
    # where there was one, in the counts' unsigned dtype, so that 0 stays "no data"
    weights = totals.max() / np.maximum(totals, 1) if totals.sum() > 0 else None
    plot = _spread(cluster_rgba(cube, colors, weights=weights, min_alpha=_MIN_ALPHA))
    return _compose(plot, x_range, y_range, title, labels, colors, axes, note)


def density_image(counts: xr.DataArray, *, x_range, y_range, title: str | None = None
                  ) -> Image.Image:
    """Map of point density: count per pixel, histogram-equalised, in :data:`DENSITY_CMAP`.

    ``counts`` is a ``(pc2, pc1)`` grid such as the ``count`` of
    :func:`sonicatlas.visual.raster.bin_points`; the image has a title and axis labels and no
    legend.
    """
    # histogram-equalised (eq_hist), so that dense cores do not saturate into one blob
    plot = _spread(density_rgba(counts.to_numpy(), list(DENSITY_CMAP)))
    return _compose(plot, x_range, y_range, title, [], [])


def feature_images(agg: xr.Dataset, features, *, x_range, y_range) -> dict[str, Image.Image]:
    """One map per feature, the mean of the feature in each pixel; and the density map.

    ``agg`` holds ``count`` and each feature's mean per pixel (from
    :func:`sonicatlas.visual.raster.bin_points` with ``features``); the density map is under
    the key ``"density"``. Colors run linearly from the feature's lowest to its highest pixel
    mean (not histogram equalised: a mean is a value to read, not a density); the legend
    gives five values.
    """
    images = {"density": density_image(agg["count"], x_range=x_range, y_range=y_range,
                                       title="Tracks per pixel, PC1 x PC2")}
    for name in features:
        means = agg[name]
        low, high = float(means.min()), float(means.max())
        if not np.isfinite(low):  # no points at all
            low, high = 0.0, 1.0
        plot = _spread(linear_rgba(means.to_numpy(), list(DENSITY_CMAP), (low, high)))
        steps = np.linspace(low, high, 5)
        colors = [DENSITY_CMAP[round(i * (len(DENSITY_CMAP) - 1) / 4)] for i in range(5)]
        images[name] = _compose(plot, x_range, y_range, f"Mean {name} per pixel",
                                [f"{v:.3g}" for v in steps], colors)
    return images


def _spread(rgba: np.ndarray) -> Image.Image:
    # points grow (up to 3 px) only while the canvas is sparse; then Pillow's "over" rather
    # than tf.set_background, which imports datashader.composite (twenty numba ufuncs compiled
    # in every new process). Row 0 is the lowest y: flipped, as Datashader's to_pil does.
    rgba = np.flipud(dynspread(rgba, threshold=0.5, max_px=3))
    pixels = np.ascontiguousarray(rgba).view(np.uint8).reshape(*rgba.shape, 4)
    plot = Image.fromarray(pixels, "RGBA")
    return Image.alpha_composite(Image.new("RGBA", plot.size, BACKGROUND), plot).convert("RGB")


@dataclass(frozen=True)
class MapLayout:
    """Image size and pixel boxes of a composed map."""

    size: tuple[int, int]
    plot: Box
    swatches: tuple[Box, ...]
    label_width: int


def map_layout(labels: list[str], *, width: int, height: int, title: bool) -> MapLayout:
    """Where the plot and legend swatches of a composed map go.

    Parameters
    ----------
    labels : list of str
        Legend labels, one per cluster; empty for no legend.
    width, height : int
        Size of the plot area in pixels.
    title : bool
        Whether a line is kept for a title above the plot.

    Returns
    -------
    MapLayout
        Image size, plot box and one swatch box per label. The legend starts at the plot's
        top right and wraps into further columns when taller than the plot.
    """
    top = _PAD + (_TITLE_FONT + _PAD if title else 0)
    plot = (_MARGIN_LEFT, top, _MARGIN_LEFT + width, top + height)
    font = _font(_FONT)
    label_w = min(_MAX_LABEL, max((math.ceil(font.getlength(s)) for s in labels), default=0))
    col_w, rows, x0 = _SWATCH + label_w + 4 * _PAD, max(1, height // _ROW), plot[2] + 2 * _PAD
    swatches = []
    for i in range(len(labels)):
        left, y = x0 + (i // rows) * col_w, top + (i % rows) * _ROW + (_ROW - _SWATCH) // 2
        swatches.append((left, y, left + _SWATCH, y + _SWATCH))
    right = x0 + math.ceil(len(labels) / rows) * col_w if labels else plot[2] + _PAD
    return MapLayout((right, plot[3] + _MARGIN_BOTTOM), plot, tuple(swatches), label_w)


def _font(size: int) -> ImageFont.FreeTypeFont:
    # Pillow's bundled font: no system fonts needed on workers or in CI.
    return ImageFont.load_default(size=size)


def nice_ticks(low: float, high: float, most: int = 6) -> list[float]:
    """Round tick values inside ``[low, high]``: steps of 1, 2 or 5 times a power of ten."""
    if not high > low:
        return [low]
    raw = (high - low) / most
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.ceil(low / step) * step
    return [round(first + i * step, 10) for i in range(int((high - first) / step) + 1)]


def _compose(plot: Image.Image, x_range, y_range, title, labels, colors,
             axes=("PC1", "PC2"), note: str = "") -> Image.Image:
    layout = map_layout(labels, width=plot.width, height=plot.height, title=bool(title))
    extra = _ROW if note else 0
    image = Image.new("RGB", (layout.size[0], layout.size[1] + extra), BACKGROUND)
    left, top, right, bottom = layout.plot
    image.paste(plot, (left, top))
    draw = ImageDraw.Draw(image)
    font, tick = _font(_FONT), _font(_TICK_FONT)
    draw.rectangle((left - 1, top - 1, right, bottom), outline="#555555")
    if title:
        draw.text(((left + right) // 2, _PAD), title, TEXT_COLOR, _font(_TITLE_FONT), "ma")
    for value in nice_ticks(*x_range):  # ticks at round values, a mark and a number each
        x = left + (value - x_range[0]) / (x_range[1] - x_range[0]) * (right - left)
        draw.line((x, bottom, x, bottom + 4), fill=TEXT_COLOR)
        draw.text((x, bottom + 5), f"{value:g}", TEXT_COLOR, tick, "ma")
    for value in nice_ticks(*y_range):
        y = bottom - (value - y_range[0]) / (y_range[1] - y_range[0]) * (bottom - top)
        draw.line((left - 5, y, left - 1, y), fill=TEXT_COLOR)
        draw.text((left - 6, y), f"{value:g}", TEXT_COLOR, tick, "rm")
    draw.text(((left + right) // 2, bottom + 22), axes[0], TEXT_COLOR, font, "ma")
    width = math.ceil(font.getlength(axes[1])) + 8
    pc2 = Image.new("RGBA", (width, 20))
    ImageDraw.Draw(pc2).text((width // 2, 10), axes[1], TEXT_COLOR, font, "mm")
    pc2 = pc2.rotate(90, expand=True)
    image.paste(pc2, (_PAD - 6, max(0, (top + bottom) // 2 - width // 2)), pc2)
    if note:
        draw.text((left, bottom + _MARGIN_BOTTOM), note, TEXT_COLOR, tick, "la")
    for (x0, y0, x1, y1), label, color in zip(layout.swatches, labels, colors, strict=True):
        draw.rectangle((x0, y0, x1 - 1, y1 - 1), fill=color)
        while font.getlength(label) > layout.label_width and len(label) > 1:
            label = label[:-2] + "…"  # cut long names to the legend column
        draw.text((x1 + 6, (y0 + y1) // 2), label, TEXT_COLOR, font, "lm")
    return image


def save_png(image: Image.Image, path: str, storage_options: dict | None = None) -> None:
    """Write ``image`` as PNG to a local path or any fsspec URL.

    Parameters
    ----------
    image : PIL.Image.Image
        The image to write.
    path : str
        Local path or URL, e.g. ``s3://bucket/run/map.png``.
    storage_options : dict, optional
        Passed to the fsspec filesystem (credentials, endpoint, ...).
    """
    fs, fs_path = fsspec.core.url_to_fs(path, **(storage_options or {}))
    if "file" in fs.protocol:  # object stores have no directories to create
        fs.makedirs(os.path.dirname(fs_path), exist_ok=True)
    data = png_bytes(image)  # unfiltered rows: smaller and faster than Pillow's writer here
    with fs.open(fs_path, "wb") as f:
        f.write(data)
