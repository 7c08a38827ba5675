"""The silhouette plot of a labelling: one band per cluster, its tracks' silhouettes sorted.

The classic picture: each sampled track is a horizontal bar as long as its silhouette, the
bars of a cluster sorted from the largest down and stacked into a band, the bands one under
another in cluster order, and a dashed vertical line at the mean over every sampled track.
A thin band is a small cluster; a band that reaches far right is a tight one; bars left of 0
are tracks nearer another cluster than their own.

The report draws it with Bokeh (one area per band, a hover per cluster); ``maps/silhouette.png``
is drawn with Pillow, a dependency already used for the maps' axes and legends: the picture
is a few hundred filled rows, which Pillow draws in a few lines, while Datashader would need a
frame of the bars and an axis drawn by hand all the same.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from bokeh.models import ColumnDataSource, FixedTicker, HoverTool, Range1d, Span
from bokeh.plotting import figure
from PIL import Image, ImageDraw, ImageFont

from sonicatlas.contract import CLUSTER, method_cluster, method_silhouette
from sonicatlas.visual.maps import BACKGROUND, TEXT_COLOR, cluster_colors, nice_ticks

MEAN_COLOR = "#D55E00"
NOISE_COLOR = "#9A9A9A"
_GAP = 0.04  # share of the sampled tracks left blank between two bands


def silhouette_bands(labels, values, clusters) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Where each sampled track's bar goes: bands top to bottom in ``clusters`` order.

    Parameters
    ----------
    labels, values : array-like
        Each sampled track's cluster and silhouette; NaN values (noise) are left out.
    clusters : sequence of int
        The clusters to draw, in order; clusters with no sampled track get no band.

    Returns
    -------
    bars : pandas.DataFrame
        ``cluster``, ``value`` (sorted from the largest down within each cluster) and ``y``
        (the bar's position: the first band's first bar at the top, 0 at the bottom).
    bands : pandas.DataFrame
        Per drawn cluster: ``cluster``, ``tracks``, ``mean``, ``top``, ``bottom``.
    """
    labels, values = np.asarray(labels), np.asarray(values, dtype=np.float64)
    kept = ~np.isnan(values)
    labels, values = labels[kept], values[kept]
    gap = max(1.0, _GAP * len(values) / max(len(clusters), 1))
    bars, bands, top = [], [], 0.0
    for cluster in clusters:
        mine = np.sort(values[labels == cluster])[::-1]
        if not len(mine):
            continue
        y = top - np.arange(len(mine), dtype=np.float64)
        bars.append(pd.DataFrame({"cluster": cluster, "value": mine, "y": y}))
        bands.append({"cluster": cluster, "tracks": len(mine), "mean": float(mine.mean()),
                      "top": top + 0.5, "bottom": top - len(mine) + 0.5})
        top -= len(mine) + gap
    bars = (pd.concat(bars, ignore_index=True) if bars
            else pd.DataFrame({"cluster": [], "value": [], "y": []}))
    bands = pd.DataFrame(bands, columns=["cluster", "tracks", "mean", "top", "bottom"])
    lowest = bands["bottom"].min() if len(bands) else 0.0
    bars["y"] -= lowest  # 0 at the bottom of the last band
    bands[["top", "bottom"]] -= lowest
    return bars, bands


def profile_colors(profiles: pd.DataFrame) -> list[str]:
    """A colour per row of a cluster profiles table, as on the maps; noise (-1) grey."""
    clusters = profiles[CLUSTER].to_numpy()
    palette = cluster_colors(int((clusters >= 0).sum()))
    return [palette[i] if c >= 0 else NOISE_COLOR for i, c in enumerate(clusters)]


def labelling(table: pd.DataFrame, profiles: pd.DataFrame, method: str | None = None) -> dict:
    """The arguments of :func:`silhouette_chart` and :func:`silhouette_image` for the run's
    clusters (``method`` None) or a compared method's, from ``summary/silhouette`` and that
    labelling's cluster profiles; empty when the table lacks the method's columns."""
    label = CLUSTER if method is None else method_cluster(method)
    value = "silhouette" if method is None else method_silhouette(method)
    if table is None or label not in table or value not in table:
        return {}
    profiles = profiles.sort_values(CLUSTER, key=lambda c: c.where(c >= 0, np.inf))
    return {"labels": table[label].to_numpy(), "values": table[value].to_numpy(),
            "clusters": profiles[CLUSTER].tolist(), "names": profiles["name"].astype(str).tolist(),
            "colors": profile_colors(profiles)}


def _limits(values: np.ndarray) -> tuple[float, float]:
    low = float(np.nanmin(values, initial=0.0))
    return (min(-0.1, math.floor(low * 10) / 10), 1.0)


def silhouette_chart(labels, values, clusters, names, colors, *, name="silhouette",
                     width=1100):
    """The silhouette plot as a Bokeh figure named ``name``.

    Parameters
    ----------
    labels, values, clusters
        As for :func:`silhouette_bands`.
    names, colors : sequence of str
        Each cluster's name and colour, in ``clusters`` order.

    Returns
    -------
    bokeh.plotting.figure or None
        None when no sampled track has a silhouette.
    """
    bars, bands = silhouette_bands(labels, values, clusters)
    if not len(bars):
        return None
    name_of = dict(zip(clusters, names, strict=True))
    color_of = dict(zip(clusters, colors, strict=True))
    mean = float(bars["value"].mean())
    height = int(min(900, max(260, 60 + 30 * len(bands) + 0.02 * len(bars))))
    fig = figure(width=width, height=height, x_range=Range1d(*_limits(bars["value"])),
                 y_range=Range1d(-0.01 * bands["top"].max(), 1.01 * bands["top"].max()),
                 title=f"Silhouette of {len(bars):,} sampled tracks (mean {mean:.3f})",
                 tools="", toolbar_location=None, x_axis_label="silhouette")
    fig.ygrid.visible = False
    for cluster, mine in bars.groupby("cluster", sort=False):
        source = ColumnDataSource({"value": mine["value"].to_numpy(),
                                   "y": mine["y"].to_numpy(), "zero": np.zeros(len(mine))})
        source.name = f"silhouette:{cluster}"
        fig.harea(x1="zero", x2="value", y="y", source=source, fill_color=color_of[cluster],
                  fill_alpha=0.9)
    marks = ColumnDataSource(bands.assign(
        name=[name_of[c] for c in bands["cluster"]], y=(bands["top"] + bands["bottom"]) / 2,
        color=[color_of[c] for c in bands["cluster"]]))
    dots = fig.scatter("mean", "y", source=marks, size=9, marker="diamond",
                       fill_color="color", line_color="#222222")
    fig.add_tools(HoverTool(renderers=[dots], tooltips=[
        ("cluster", "@name"), ("sampled tracks", "@tracks{0,0}"),
        ("mean silhouette", "@mean{0.000}")]))
    fig.add_layout(Span(location=mean, dimension="height", line_color=MEAN_COLOR,
                        line_dash="dashed", line_width=2))
    fig.add_layout(Span(location=0, dimension="height", line_color="#555555", line_width=1))
    fig.yaxis.ticker = FixedTicker(ticks=marks.data["y"].tolist())
    fig.yaxis.major_label_overrides = {float(y): n for y, n in zip(marks.data["y"],
                                                                    marks.data["name"],
                                                                    strict=True)}
    fig.name = name
    return fig


def silhouette_image(labels, values, clusters, names, colors, *, width: int = 900,
                     height: int = 560) -> Image.Image | None:
    """The silhouette plot as a PNG-ready image (``maps/silhouette.png``).

    Each band gets pixel rows in proportion to its tracks (at least 6); a pixel row shows
    the sorted value at its place in the band, so the outline is the sorted values'.
    Arguments as for :func:`silhouette_chart`; None when no track has a silhouette.
    """
    bars, bands = silhouette_bands(labels, values, clusters)
    if not len(bars):
        return None
    font, small = ImageFont.load_default(size=14), ImageFont.load_default(size=12)
    shown = dict(zip(clusters, names, strict=True))
    color_of = dict(zip(clusters, colors, strict=True))
    left = 24 + min(220, max(math.ceil(font.getlength(shown[c])) for c in bands["cluster"]))
    top, plot_w, gap = 44, width - left - 30, 6
    rows = height - gap * (len(bands) - 1)
    band_rows = np.maximum(6, np.round(rows * bands["tracks"] / bands["tracks"].sum())
                           ).astype(int)
    bottom = top + int(band_rows.sum()) + gap * (len(bands) - 1)
    image = Image.new("RGB", (width, bottom + 56), BACKGROUND)
    draw = ImageDraw.Draw(image)
    low, high = _limits(bars["value"])

    def x_of(v: float) -> float:
        return left + (v - low) / (high - low) * plot_w

    mean = float(bars["value"].mean())
    draw.text((width // 2, 12), f"Silhouette of {len(bars):,} sampled tracks "
              f"(mean {mean:.3f})", TEXT_COLOR, font, "ma")
    y = top
    for (cluster, mine), n_rows in zip(bars.groupby("cluster", sort=False), band_rows,
                                       strict=True):
        values = mine["value"].to_numpy()
        picks = values[np.minimum(((np.arange(n_rows) + 0.5) / n_rows * len(values))
                                  .astype(int), len(values) - 1)]
        for r, v in enumerate(picks):
            draw.line((x_of(0.0), y + r, x_of(v), y + r), fill=color_of[cluster])
        draw.text((left - 8, y + n_rows / 2), shown[cluster], TEXT_COLOR, font, "rm")
        y += n_rows + gap
    draw.line((x_of(0.0), top, x_of(0.0), bottom), fill="#777777")
    for y0 in range(top, bottom, 8):  # the mean, dashed
        draw.line((x_of(mean), y0, x_of(mean), min(y0 + 4, bottom)), fill=MEAN_COLOR, width=2)
    draw.line((left, bottom + 2, left + plot_w, bottom + 2), fill=TEXT_COLOR)
    for value in nice_ticks(low, high):
        draw.line((x_of(value), bottom + 2, x_of(value), bottom + 6), fill=TEXT_COLOR)
        draw.text((x_of(value), bottom + 8), f"{value:g}", TEXT_COLOR, small, "ma")
    draw.text((left + plot_w / 2, bottom + 28), "silhouette (dashed: mean)", TEXT_COLOR,
              font, "ma")
    return image
