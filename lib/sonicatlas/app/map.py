"""The explorer's map: every selected track on PC1 x PC2 (or another projection the run made,
such as ``ica1`` x ``ica2``), aggregated by Datashader per view.

Each zoom or pan asks the server for one image of the plot's size, whatever the number of
tracks: Datashader counts the selected tracks per pixel and per cluster for the visible range,
and the browser receives, per pixel, the dominant cluster (uint8) and the track count (uint16)
— three bytes a pixel, which the hover shows. Colouring by density sends the counts; by a
feature, its mean per pixel.
"""

from __future__ import annotations

import functools

import datashader as ds
import holoviews as hv
import numpy as np
import pandas as pd
from bokeh.models import CustomJSHover
from scipy import ndimage

from sonicatlas.app.data import RunData
from sonicatlas.contract import CLUSTER_NAME, PC1, PC2
from sonicatlas.visual.maps import cluster_colors

COLOR_BY = ("cluster", "density")
#: The view opens on the middle 99.8% of the tracks, so a few outliers do not shrink the rest.
VIEW_QUANTILES = (0.001, 0.999)
WIDTH, HEIGHT = 760, 560
EMPTY = 255  # dominant-cluster value of a pixel with no track (drawn transparent)
#: Below this share of lit pixels, each track is drawn 3 pixels wide, so that a sparse
#: selection or a small cluster stays visible.
SPREAD_BELOW = 0.02


def view_bounds(data: RunData, columns: tuple[str, str] = (PC1, PC2)
                ) -> tuple[tuple[float, float], tuple[float, float]]:
    """The initial x and y ranges: robust quantiles of ``columns``, padded by 5%."""
    bounds = []
    for column in columns:
        low, high = data.access.quantiles(column, VIEW_QUANTILES)
        pad = 0.05 * max(high - low, 1e-6)
        bounds.append((float(low - pad), float(high + pad)))
    return bounds[0], bounds[1]


def pixel_counts(tracks: pd.DataFrame, mask, color_by: str, x_range, y_range,
                 columns: tuple[str, str] = (PC1, PC2)) -> np.ndarray:
    """The selected rows of ``tracks`` (the whole table, or one partition of it) binned on the
    plot's pixels by their ``columns`` (x, y), as counts and sums that add up across partitions.

    Returns
    -------
    numpy.ndarray
        For ``cluster``: tracks per pixel and cluster, (height, width, clusters + noise); for
        ``density``: tracks per pixel; for a feature: its sum and count, (2, height, width).
    """
    column = [] if color_by == "density" else [CLUSTER_NAME if color_by == "cluster"
                                                else color_by]
    x, y = columns
    frame = tracks.loc[mask, [x, y, *column]] if mask is not None else tracks
    canvas = ds.Canvas(plot_width=WIDTH, plot_height=HEIGHT, x_range=x_range, y_range=y_range)
    if color_by == "cluster":
        return canvas.points(frame, x, y, ds.by(CLUSTER_NAME, ds.count())).values
    if color_by == "density":
        return canvas.points(frame, x, y, ds.count()).values
    both = canvas.points(frame, x, y, ds.summary(total=ds.sum(color_by),
                                                 n=ds.count(color_by)))
    return np.stack([np.nan_to_num(both["total"].values), both["n"].values])


def aggregate(data: RunData, mask, color_by: str, x_range, y_range,
              columns: tuple[str, str] = (PC1, PC2)) -> hv.Image:
    """One view of the map: the selected tracks binned on the plot's pixels.

    The bins are :func:`pixel_counts` of the whole table, or of each partition on a cluster
    and added up here: what comes back is a few arrays of the plot's size.

    Parameters
    ----------
    data : RunData
    mask : numpy.ndarray or dask.dataframe.Series
        The filters' selection.
    color_by : str
        ``cluster``, ``density`` or an audio feature.
    x_range, y_range : tuple of float
        The visible range.
    columns : tuple of str
        The projection's x and y columns.

    Returns
    -------
    holoviews.Image
        For ``cluster``: value dimensions ``cluster`` (dominant cluster id, 255 where empty)
        and ``tracks``; for ``density``: ``tracks``; for a feature: its mean.
    """
    bins = data.access.reduce(mask, functools.partial(
        pixel_counts, color_by=color_by, x_range=tuple(x_range), y_range=tuple(y_range),
        columns=tuple(columns)), sum)
    kdims = list(columns)
    bounds = (x_range[0], y_range[0], x_range[1], y_range[1])
    axes = (_centres(x_range, WIDTH), _centres(y_range, HEIGHT))
    if color_by == "cluster":
        tracks = bins.sum(axis=2)
        dominant = np.where(tracks > 0, bins.argmax(axis=2), EMPTY).astype(np.uint8)
        counts = np.minimum(tracks, np.iinfo(np.uint16).max).astype(np.uint16)
        dominant, counts = _spread(dominant, counts)
        return hv.Image((*axes, dominant, counts), kdims=kdims,
                        vdims=["cluster", "tracks"], bounds=bounds)
    if color_by == "density":
        counts = bins.astype(np.float32)
        counts[counts == 0] = np.nan
        return hv.Image((*axes, counts), kdims=kdims, vdims=["tracks"], bounds=bounds)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = (bins[0] / bins[1]).astype(np.float32)  # NaN where no track
    return hv.Image((*axes, means), kdims=kdims, vdims=[color_by], bounds=bounds)


def _spread(dominant: np.ndarray, counts: np.ndarray):
    """Fill the empty neighbours of lit pixels when few are lit (a 3 x 3 dilation).

    A filled pixel takes its busiest neighbour's cluster and count: the dilation runs on
    ``count * 256 + cluster``, whose maximum is that neighbour.
    """
    lit = counts > 0
    if lit.mean() >= SPREAD_BELOW:
        return dominant, counts
    key = counts.astype(np.uint32) * 256 + np.where(lit, dominant, 0)
    grown = ndimage.grey_dilation(key, size=(3, 3))
    fill = ~lit & (grown > 0)
    return (np.where(fill, grown % 256, dominant).astype(np.uint8),
            np.where(fill, grown // 256, counts).astype(np.uint16))


def _centres(span, n):
    step = (span[1] - span[0]) / n
    return np.linspace(span[0] + step / 2, span[1] - step / 2, n)


def map_plot(data: RunData, selection, color_by: str, axis_labels: tuple[str, str],
             columns: tuple[str, str] = (PC1, PC2)):
    """A zoomable map of the selection that re-aggregates on every zoom and pan.

    Parameters
    ----------
    data : RunData
    selection : param.Parameter
        ``Filters.param.selection``: the map re-draws when the selection changes.
    color_by : str
        ``cluster``, ``density`` or an audio feature.
    axis_labels : tuple of str
        What the axes mean: PC1 and PC2's top loadings, or ``UMAP 1``, ``UMAP 2``.
    columns : tuple of str
        The projection drawn: its x and y columns of the tracks.

    Returns
    -------
    holoviews.DynamicMap
    """
    xlim, ylim = view_bounds(data, columns)
    ranges = hv.streams.RangeXY(x_range=xlim, y_range=ylim)
    chosen = hv.streams.Params(parameters=[selection], rename={selection.name: "mask"})

    def view(x_range, y_range, mask):
        return aggregate(data, mask, color_by, x_range or xlim, y_range or ylim, columns)

    options = dict(width=WIDTH, height=HEIGHT, xlim=xlim, ylim=ylim, xlabel=axis_labels[0],
                   ylabel=axis_labels[1], tools=["hover", "tap"], bgcolor="#111111",
                   default_tools=["pan", "wheel_zoom", "box_zoom", "reset"],
                   active_tools=["wheel_zoom"], framewise=False)
    dmap = hv.DynamicMap(view, streams=[ranges, chosen])
    if color_by == "cluster":
        colors = cluster_colors(len(data.names))
        names = [*data.names, *[""] * (256 - len(data.names))]
        name_of = CustomJSHover(args={"names": names},
                                code="return value == 255 ? 'none' : names[value]")
        hover = [("cluster", "@cluster{custom}"), ("tracks", "@tracks")]
        return dmap.opts(cmap=colors, clim=(-0.5, len(colors) - 0.5), color_levels=len(colors),
                         clipping_colors={"max": "transparent", "NaN": "transparent"},
                         hover_tooltips=hover, hover_formatters={"@cluster": name_of},
                         **options)
    if color_by == "density":
        return dmap.opts(cmap="fire", cnorm="eq_hist", colorbar=True, clabel="tracks",
                         clipping_colors={"NaN": "transparent"}, **options)
    return dmap.opts(cmap="viridis", colorbar=True, clabel=f"mean {color_by}",
                     clipping_colors={"NaN": "transparent"}, **options)


def nearest_track(data: RunData, mask, x: float, y: float,
                  columns: tuple[str, str] = (PC1, PC2)) -> pd.DataFrame | None:
    """The selected track nearest ``(x, y)`` on the map of ``columns``, as a one-row table
    (its index is the row's position in a table held in this process); None when none is
    selected."""
    if x is None or y is None:
        return None
    found = data.access.reduce(mask, functools.partial(_nearest, x=x, y=y, columns=columns),
                               _closest)
    return None if found is None else found[1]


def _nearest(tracks: pd.DataFrame, mask: np.ndarray, x: float, y: float,
             columns: tuple[str, str] = (PC1, PC2)):
    rows = np.flatnonzero(mask)
    if len(rows) == 0:
        return None
    dx = tracks[columns[0]].to_numpy()[rows] - np.float32(x)
    dy = tracks[columns[1]].to_numpy()[rows] - np.float32(y)
    distance = dx.astype(np.float64) ** 2 + dy.astype(np.float64) ** 2
    best = int(np.argmin(distance))
    return float(distance[best]), tracks.iloc[[rows[best]]]


def _closest(found: list):
    found = [f for f in found if f is not None]
    return min(found, key=lambda f: f[0]) if found else None
