"""The explorer's map: every selected track on PC1 x PC2, aggregated by Datashader per view.

``rasterize`` re-aggregates on the server at every zoom and pan, so the browser receives one
image of the plot's size whatever the number of tracks. Colouring by cluster aggregates counts
per cluster (the hover lists them); by density, counts; by a feature, the mean per pixel.
"""

from __future__ import annotations

import datashader as ds
import holoviews as hv
import numpy as np
import panel as pn
from holoviews.operation.datashader import dynspread, rasterize

from sonicatlas.app.data import RunData
from sonicatlas.contract import CLUSTER_NAME, PC1, PC2
from sonicatlas.visual.maps import cluster_colors

COLOR_BY = ("cluster", "density")
#: The view opens on the middle 99.8% of the tracks, so a few outliers do not shrink the rest.
VIEW_QUANTILES = (0.001, 0.999)


def view_bounds(data: RunData) -> tuple[tuple[float, float], tuple[float, float]]:
    """The initial x and y ranges: robust quantiles of the coordinates, padded by 5%."""
    bounds = []
    for column in (PC1, PC2):
        low, high = np.nanquantile(data.tracks[column].to_numpy(), VIEW_QUANTILES)
        pad = 0.05 * max(high - low, 1e-6)
        bounds.append((float(low - pad), float(high + pad)))
    return bounds[0], bounds[1]


def points(data: RunData, mask: np.ndarray, color_by: str) -> hv.Points:
    """The selected tracks as HoloViews points, with the column the colouring needs."""
    extra = [] if color_by == "density" else [CLUSTER_NAME if color_by == "cluster" else color_by]
    frame = data.tracks.loc[mask, [PC1, PC2, *extra]]
    return hv.Points(frame, [PC1, PC2], extra)


def map_plot(data: RunData, mask_stream, color_by: str, axis_labels: tuple[str, str]):
    """A rasterized, zoomable map of the selection.

    Parameters
    ----------
    data : RunData
    mask_stream : callable
        ``Filters.mask``: the DynamicMap re-draws when it changes.
    color_by : str
        ``cluster``, ``density`` or an audio feature.
    axis_labels : tuple of str
        What PC1 and PC2 mean (their top loadings).

    Returns
    -------
    holoviews.DynamicMap
    """
    xlim, ylim = view_bounds(data)
    dmap = hv.DynamicMap(pn.bind(points, data, mask_stream, color_by))
    options = dict(width=760, height=560, xlim=xlim, ylim=ylim, xlabel=axis_labels[0],
                   ylabel=axis_labels[1], tools=["hover", "tap"], bgcolor="#111111",
                   default_tools=["pan", "wheel_zoom", "box_zoom", "reset"],
                   active_tools=["wheel_zoom"])
    if color_by == "cluster":
        colors = dict(zip(list(data.tracks[CLUSTER_NAME].cat.categories),
                          cluster_colors(len(data.names)) + ["#777777"], strict=False))
        shaded = rasterize(dmap, aggregator=ds.by(CLUSTER_NAME, ds.count()))
        return dynspread(shaded.opts(cmap=colors, **options), threshold=0.6)
    if color_by == "density":
        shaded = rasterize(dmap, aggregator=ds.count())
        return dynspread(shaded.opts(cmap="fire", cnorm="eq_hist", clabel="tracks", **options))
    shaded = rasterize(dmap, aggregator=ds.mean(color_by))
    return dynspread(shaded.opts(cmap="viridis", colorbar=True, clabel=f"mean {color_by}",
                                 **options))


def nearest_track(data: RunData, mask: np.ndarray, x: float, y: float) -> int | None:
    """Row of the selected track nearest ``(x, y)`` on the map (None when none is selected)."""
    rows = np.flatnonzero(mask)
    if len(rows) == 0 or x is None or y is None:
        return None
    dx = data.tracks[PC1].to_numpy()[rows] - np.float32(x)
    dy = data.tracks[PC2].to_numpy()[rows] - np.float32(y)
    return int(rows[np.argmin(dx.astype(np.float64) ** 2 + dy.astype(np.float64) ** 2)])
