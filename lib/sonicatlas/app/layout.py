"""The explorer as one Panel layout: filters on the left, the sections as tabs.

:func:`explorer` is what ``sonicatlas serve`` serves and what a notebook displays. Each tab is
bound to the filters' mask, so a filter change updates the counts, the map, the charts and the
tables together; tabs are rendered only when shown.
"""

from __future__ import annotations

import functools
import logging

import holoviews as hv
import numpy as np
import pandas as pd
import panel as pn

from sonicatlas import storage
from sonicatlas.app import views
from sonicatlas.app.data import RunData, read_run
from sonicatlas.app.discover_tabs import (
    Picks,
    message,
    playlist_tab,
    search_tab,
    similar_list,
)
from sonicatlas.app.discovery import Discovery
from sonicatlas.app.export import export_tab, selection_downloads
from sonicatlas.app.filters import Filters
from sonicatlas.app.map import COLOR_BY, map_plot, nearest_track
from sonicatlas.contract import CLUSTER_NAME, PC1, PC2, TRACK_ID
from sonicatlas.errors import InputError
from sonicatlas.visual import axes

log = logging.getLogger(__name__)


def safe(view):
    """Show a failing view's error as a message in the app; log the traceback on the server."""
    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        try:
            return view(*args, **kwargs)
        except Exception as error:  # the page must keep working whatever one view hits
            log.exception("explorer view %s failed", view.__name__)
            return pn.pane.Alert(f"{view.__name__.replace('_', ' ')} failed: {error}",
                                 alert_type="danger")
    return wrapper


def axis_labels(data: RunData) -> tuple[str, str]:
    """Each map axis with its share of the variance and the features loading most on it
    (``summary/pca``), or the bare ``PC1``, ``PC2`` when the run has no such table."""
    try:
        fs, root = storage.resolve(data.run, data.storage_options)
        table = pd.read_parquet(f"{root.rstrip('/')}/summary/pca", filesystem=fs)
    except (OSError, ValueError):
        table = None
    return axes.axis_labels(table)


def explorer(run: str | RunData, storage_options: dict | None = None,
             discovery: Discovery | None = None) -> pn.viewable.Viewable:
    """The interactive explorer of a cluster-tracks run, as a Panel layout.

    Parameters
    ----------
    run : str or RunData
        A run directory (local or fsspec URL), or a run already loaded with
        :func:`sonicatlas.app.data.read_run`.
    storage_options : dict, optional
        fsspec options for ``run``.
    discovery : Discovery or ClusterDiscovery, optional
        The run's discovery, made once and shared by every browser session of a server (its
        folded names and artist profiles are built on first use); a run on a cluster
        (:func:`sonicatlas.app.cluster_data.read_run_on_cluster`) needs its
        :class:`~sonicatlas.app.cluster_discovery.ClusterDiscovery`.

    Returns
    -------
    panel.viewable.Viewable
        Display it in a notebook, or serve it (``sonicatlas serve``).
    """
    pn.extension("tabulator", inline=True)
    data = run if isinstance(run, RunData) else read_run(run, storage_options)
    filters = Filters(data.tracks, data.features, data.genres, data.access)
    mask = filters.param.selection
    sidebar = _filter_widgets(filters)
    count = pn.pane.Markdown(pn.bind(lambda m: f"### {data.access.count(m):,} tracks", mask),
                             name="count")
    color = pn.widgets.Select(name="Colour by", options=[*COLOR_BY, *data.features],
                              value="cluster")
    labels = axis_labels(data)
    projection = pn.widgets.Select(
        name="Projection", value="pca",
        options={("PCA" if p == "pca" else axes.projection_title(p)): p
                 for p in data.projections})
    selected = pn.Column(pn.pane.Markdown("Click the map to pick the nearest track."),
                         name="selected")

    discovery, picks = discovery or _discovery(data), Picks()

    def build_map(color_by, shown="pca"):
        columns = data.projection_axes(shown)
        title = axes.projection_title(shown)
        named = labels if shown == "pca" else (f"{title} 1", f"{title} 2")
        plot = map_plot(data, mask, color_by, named, columns)
        tap = hv.streams.Tap(source=plot, x=None, y=None)
        tap.add_subscriber(lambda x, y: _show_track(data, discovery, filters, x, y, selected,
                                                    columns))
        return pn.pane.HoloViews(plot, name="map")

    if len(data.projections) > 1:  # a run made with more than PCA: choose the map's projection
        map_tab = pn.Column(pn.Row(color, projection), pn.bind(safe(build_map), color,
                                                               projection), selected)
    else:
        map_tab = pn.Column(color, pn.bind(safe(build_map), color), selected)

    if not isinstance(discovery, pn.pane.Alert):
        search = search_tab(discovery, picks)
        playlist = playlist_tab(discovery, picks, data.names)
    else:  # a run without query data: say how to get it, once, where the tabs would be
        search = playlist = discovery

    tabs = pn.Tabs(
        ("Overview", pn.bind(safe(views.overview), data, mask)),
        ("Map", map_tab),
        ("Clusters", _clusters_tab(data, mask)),
        ("Tracks", pn.Column(selection_downloads(data, mask),
                             pn.bind(safe(views.track_table), data, mask))),
        ("Search", search),
        ("Playlist", playlist),
        ("Export", export_tab(data, mask, lambda: picks.playlist)),
        dynamic=True, sizing_mode="stretch_width")
    header = pn.pane.Markdown(f"## sonicatlas explorer\n`{data.run}` · {len(data.names)} "
                              "clusters (names compare each cluster with this catalog)")
    return pn.Row(pn.Column(count, *sidebar, width=300), pn.Column(header, tabs),
                  sizing_mode="stretch_width")


def _filter_widgets(filters: Filters) -> list:
    widgets = [
        pn.widgets.MultiChoice.from_param(filters.param.clusters, name="Clusters"),
    ]
    if filters.param.genres.objects:
        widgets.append(pn.widgets.MultiChoice.from_param(filters.param.genres, name="Genres"))
    widgets.append(pn.widgets.TextInput.from_param(filters.param.artist, name="Artist",
                                                   placeholder="part of a name"))
    for name, label in (("popularity", "Popularity"), ("release_year", "Release year"),
                        ("duration_min", "Duration (minutes)")):
        if filters.bounds(name):
            widgets.append(pn.widgets.RangeSlider.from_param(
                filters.param[name], name=label, step=1))
    if filters.has_explicit:
        widgets.append(pn.widgets.RadioButtonGroup.from_param(filters.param.explicit))
    if len(filters.param.feature.objects) > 1:
        widgets.append(pn.widgets.Select.from_param(filters.param.feature,
                                                    name="Audio feature"))
        widgets.append(pn.widgets.EditableRangeSlider.from_param(
            filters.param.feature_range, name="Feature range", step=0.01))
    reset = pn.widgets.Button(name="Show all tracks", button_type="light")
    reset.on_click(lambda _: filters.reset())
    return [*widgets, reset]


def _clusters_tab(data: RunData, mask) -> pn.Column:
    """The cluster charts, with a choice of method when the run kept several methods'
    labels (``compare:``)."""
    if not data.methods:
        return pn.Column(pn.bind(safe(views.clusters), data, mask))
    method = pn.widgets.RadioButtonGroup(name="Clusters by", options=["kmeans", *data.methods],
                                         value="kmeans")
    return pn.Column(pn.Row(pn.pane.Markdown("**Clusters by**"), method),
                     pn.bind(lambda m, chosen: safe(views.clusters)(data, m, method=chosen),
                             mask, method))


def _discovery(data: RunData) -> Discovery | pn.pane.Alert:
    try:
        return Discovery(data)
    except InputError as error:
        return message(error)


def _show_track(data: RunData, discovery, filters: Filters, x, y, target: pn.Column,
                columns: tuple[str, str] = (PC1, PC2)) -> None:
    found = nearest_track(data, filters.selection, x, y, columns)
    if found is None:
        return
    track = found.iloc[0]
    shown = [c for c in ("track_name", "artist_name", "genre", "popularity", CLUSTER_NAME,
                         *data.features) if c in found]
    lines = [f"**{track.get('track_name', track[TRACK_ID])}** (`{track[TRACK_ID]}`)",
             f"at ({track[columns[0]]:.2f}, {track[columns[1]]:.2f})", ""]
    lines += [f"- {c}: {track[c]:.4g}" if isinstance(track[c], (float, np.floating))
              else f"- {c}: {track[c]}"
              for c in shown]
    target.objects = [pn.pane.Markdown("\n".join(lines), name="track")]
    if not isinstance(discovery, pn.pane.Alert):
        target.append(pn.pane.Markdown("**The 10 songs most like it**"))
        target.append(similar_list(discovery, discovery.locate(found)))
