"""The explorer's read-only views, each a function of the filtered tracks.

Every view takes the boolean mask of :meth:`sonicatlas.app.filters.Filters.mask` and draws
only what passes it; none computes what another already has beyond one pass over its own
columns. What a view reads of the tracks is a partial over one table and a combine, run by
``data.access`` (:mod:`sonicatlas.app.access`) in this process or on each partition of a
cluster, so the same view serves both. The cluster charts are the report's
(:mod:`sonicatlas.visual.charts`), fed with the filtered tracks' statistics, so the app and
``report.html`` look alike.
"""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd
import panel as pn
from bokeh.layouts import column, row
from bokeh.models import GridPlot

from sonicatlas.app.data import RunData
from sonicatlas.contract import ARTIST, CLUSTER, CLUSTER_NAME
from sonicatlas.visual import charts
from sonicatlas.visual.maps import cluster_colors

#: Rows drawn for box plots and correlations of a filtered selection: enough for stable
#: quartiles, small enough to draw in a moment.
SAMPLE_ROWS = 20_000
LISTED = ["track_name", ARTIST, "genre", "popularity", "release_year", CLUSTER_NAME]


def overview(data: RunData, mask) -> pn.viewable.Viewable:
    """Counts of the selection (tracks, artists, genres, clusters) and the run's facts."""
    tracks, access = data.tracks, data.access
    rows = [("Tracks shown", f"{access.count(mask):,} of {access.size:,}")]
    if ARTIST in tracks:
        rows.append(("Artists", f"{access.distinct(ARTIST, mask):,}"))
    if "genre" in tracks:
        rows.append(("Genres", f"{len(data.genres):,} in the catalog"))
    k = len(data.names)
    present = access.reduce(mask, functools.partial(_cluster_counts, column=CLUSTER, k=k), sum)
    rows.append(("Clusters", f"{int((present[1:] > 0).sum())} of {k} shown"))
    rows.append(("k", str(k)))
    rows.append(("Rows rejected", f"{int(data.rejects['rows'].sum()):,}"))
    config = data.manifest.get("config", {})
    rows.append(("Algorithm", str(config.get("algorithm", "kmeans"))))
    rows.append(("Input", str(data.manifest.get("input", {}).get("source", config.get("input")))))
    facts = pd.DataFrame(rows, columns=["", "value"])
    return pn.Column(
        pn.pane.DataFrame(facts, index=False, name="facts", sizing_mode="stretch_width"),
        pn.pane.Markdown("**Rejected rows by reason**"),
        pn.pane.DataFrame(data.rejects, index=False) if len(data.rejects)
        else pn.pane.Markdown("No row was rejected."))


def _cluster_counts(tracks: pd.DataFrame, mask: np.ndarray, column: str, k: int) -> np.ndarray:
    """Selected tracks per cluster id + 1 (noise, -1, first)."""
    return np.bincount(tracks[column].to_numpy()[mask] + 1, minlength=k + 1)


def _cluster_sums(tracks: pd.DataFrame, mask: np.ndarray, column: str, k: int,
                  features: list[str]) -> np.ndarray:
    """Per cluster of the selection: the track count, then each feature's sum (k x 1 + F)."""
    labels = tracks[column].to_numpy()[mask]
    valid = labels >= 0
    labels = labels[valid]
    out = np.empty((k, 1 + len(features)))
    out[:, 0] = np.bincount(labels, minlength=k)
    for j, feature in enumerate(features):
        values = tracks[feature].to_numpy(np.float64)[mask][valid]
        out[:, 1 + j] = np.bincount(labels, weights=np.nan_to_num(values), minlength=k)
    return out


def selection_profiles(data: RunData, mask, method: str | None = None
                       ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-cluster size, share and feature means of the selection, and their z-scores.

    The clusters are ``method``'s (the run's KMeans by default). The z-scores are against
    the whole catalog (its mean and standard deviation), as the report's are, so a filter
    shows how its clusters differ from the catalog.
    """
    column, names = data.label_column(method)
    k = len(names)
    sums = data.access.reduce(mask, functools.partial(
        _cluster_sums, column=column, k=k, features=list(data.features)), sum)
    size = sums[:, 0].astype(np.int64)
    profiles = pd.DataFrame({CLUSTER: np.arange(k), "name": names, "size": size,
                             "share": size / max(size.sum(), 1)})
    z = {}
    moments = data.moments()
    for j, feature in enumerate(data.features):
        with np.errstate(invalid="ignore", divide="ignore"):
            means = sums[:, 1 + j] / size
        profiles[f"{feature}_mean"] = means
        centre, spread = moments[feature]
        z[feature] = (means - centre) / spread if spread > 0 else means * 0
    shown = profiles["size"].to_numpy() > 0
    z = pd.DataFrame(z, index=profiles.index)
    return profiles[shown].reset_index(drop=True), z[shown].reset_index(drop=True)


def clusters(data: RunData, mask: np.ndarray, seed: int = 0, method: str | None = None
             ) -> pn.viewable.Viewable:
    """Sizes, radars, z-score heatmap, box plots and correlations of the selection, by
    ``method``'s clusters (the run's KMeans by default)."""
    profiles, z = selection_profiles(data, mask, method)
    if profiles.empty:
        return pn.pane.Markdown("No track passes the filters.")
    column, names = data.label_column(method)
    colors = [cluster_colors(len(names))[c] for c in profiles[CLUSTER]]
    parts = [pn.pane.Bokeh(charts.cluster_sizes(profiles, colors))]
    if data.features:
        radar, _ = charts.radars(z, profiles, data.features, colors)
        parts += [pn.pane.Bokeh(_rows(radar)),
                  pn.pane.Bokeh(charts.zscore_heatmap(z, profiles, data.features))]
        sample = _sample(data, mask, seed, column, names)
        parts.append(pn.pane.Bokeh(_rows(charts.boxes_from_sample(sample, profiles,
                                                                  data.features, colors))))
        if len(sample) > 2:
            parts.append(pn.pane.Bokeh(charts.correlation(
                sample[data.features].corr(), "Pearson correlation of the features, selection")))
    else:
        parts.append(pn.pane.Markdown(
            "This run has no query data, so the audio features cannot be shown; re-run "
            "`sonicatlas run cluster-tracks` to add it."))
    return pn.Column(*parts)


def _rows(grid: GridPlot):
    """The report's grid of figures as a column of rows.

    Inside Panel's tabs a Bokeh ``GridPlot`` leaves each figure's plot frame 0 x 0 pixels, so
    the grid draws blank (Bokeh 3.9, Panel 1.9); rows and columns of the same figures lay out.
    """
    ncols = max(col for _, _, col in grid.children) + 1
    figures = [fig for fig, _, _ in sorted(grid.children, key=lambda cell: cell[1:3])]
    layout = column(*[row(*figures[i:i + ncols]) for i in range(0, len(figures), ncols)])
    layout.name = grid.name
    return layout


def _sample(data: RunData, mask, seed: int, column: str, names: list[str]) -> pd.DataFrame:
    sample = data.access.sample(mask, column, SAMPLE_ROWS, seed, [*data.features, column])
    labels = sample[column].to_numpy()
    sample = sample[data.features].assign(**{CLUSTER: labels})
    return sample.assign(name=np.asarray(names, dtype=object)[labels])


def _representative(tracks: pd.DataFrame, mask, per_cluster: int) -> pd.DataFrame:
    chosen = tracks if mask is None else tracks.loc[mask]
    chosen = chosen[[c for c in ["track_id", *LISTED, "distance"] if c in tracks]]
    return (chosen.sort_values(["distance", "track_id"])
            .groupby(CLUSTER_NAME, observed=True, sort=False).head(per_cluster))


def representative(data: RunData, mask, per_cluster: int = 5) -> pd.DataFrame:
    """The selection's most typical tracks: nearest their cluster's centre, per cluster."""
    found = data.access.reduce(mask, functools.partial(_representative,
                                                       per_cluster=per_cluster),
                               lambda parts: pd.concat(parts, ignore_index=True))
    return (_representative(found, None, per_cluster)
            .sort_values([CLUSTER_NAME, "distance"]).reset_index(drop=True))


def _most_popular(tracks: pd.DataFrame, mask, columns: list[str], rows: int) -> pd.DataFrame:
    """The first ``rows`` selected tracks, most popular first where known (ties in order)."""
    chosen = np.flatnonzero(mask) if mask is not None else np.arange(len(tracks))
    if "popularity" in tracks and len(chosen) > rows:
        popularity = np.nan_to_num(tracks["popularity"].to_numpy()[chosen], nan=-1)
        chosen = chosen[np.argsort(-popularity, kind="stable")[:rows]]
    return tracks.iloc[chosen[:rows]][columns].reset_index(drop=True)


def track_table(data: RunData, mask, rows: int = 200) -> pn.widgets.Tabulator:
    """The first ``rows`` tracks of the selection, most popular first where known."""
    tracks = data.tracks
    columns = [c for c in ["track_id", *LISTED, *data.features] if c in tracks]
    frame = data.access.reduce(
        mask, functools.partial(_most_popular, columns=columns, rows=rows),
        lambda parts: _most_popular(pd.concat(parts, ignore_index=True), None, columns, rows))
    return pn.widgets.Tabulator(frame, disabled=True, pagination="local", page_size=20,
                                sizing_mode="stretch_width", show_index=False)
