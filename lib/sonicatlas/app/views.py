"""The explorer's read-only views, each a function of the filtered tracks.

Every view takes the boolean mask of :meth:`sonicatlas.app.filters.Filters.mask` and draws
only what passes it; none computes what another already has beyond one pass over its own
columns. The cluster charts are the report's (:mod:`sonicatlas.visual.charts`), fed with the
filtered tracks' statistics, so the app and ``report.html`` look alike.
"""

from __future__ import annotations

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


def overview(data: RunData, mask: np.ndarray) -> pn.viewable.Viewable:
    """Counts of the selection (tracks, artists, genres, clusters) and the run's facts."""
    tracks = data.tracks
    chosen = int(mask.sum())
    rows = [("Tracks shown", f"{chosen:,} of {len(tracks):,}")]
    if ARTIST in tracks:
        rows.append(("Artists", f"{_distinct(tracks[ARTIST], mask):,}"))
    if "genre" in tracks:
        rows.append(("Genres", f"{len(data.genres):,} in the catalog"))
    present = np.bincount(tracks[CLUSTER].to_numpy()[mask] + 1, minlength=len(data.names) + 1)
    rows.append(("Clusters", f"{int((present[1:] > 0).sum())} of {len(data.names)} shown"))
    rows.append(("k", str(len(data.names))))
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


def _distinct(column: pd.Series, mask: np.ndarray) -> int:
    codes = column.cat.codes.to_numpy()[mask]
    return int(np.count_nonzero(np.bincount(codes[codes >= 0],
                                            minlength=len(column.cat.categories))))


def selection_profiles(data: RunData, mask: np.ndarray, method: str | None = None
                       ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-cluster size, share and feature means of the selection, and their z-scores.

    The clusters are ``method``'s (the run's KMeans by default). The z-scores are against
    the whole catalog (its mean and standard deviation), as the report's are, so a filter
    shows how its clusters differ from the catalog.
    """
    tracks = data.tracks
    labels, names = data.labels(method)
    k = len(names)
    labels = labels[mask]
    valid = labels >= 0
    labels = labels[valid]
    size = np.bincount(labels, minlength=k)
    profiles = pd.DataFrame({CLUSTER: np.arange(k), "name": names, "size": size,
                             "share": size / max(size.sum(), 1)})
    z = {}
    for feature in data.features:
        column = tracks[feature].to_numpy(np.float64)
        values = column[mask][valid]
        sums = np.bincount(labels, weights=np.nan_to_num(values), minlength=k)
        with np.errstate(invalid="ignore", divide="ignore"):
            means = sums / size
        profiles[f"{feature}_mean"] = means
        spread = np.nanstd(column)
        z[feature] = (means - np.nanmean(column)) / spread if spread > 0 else means * 0
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
    labels, names = data.labels(method)
    colors = [cluster_colors(len(names))[c] for c in profiles[CLUSTER]]
    parts = [pn.pane.Bokeh(charts.cluster_sizes(profiles, colors))]
    if data.features:
        radar, _ = charts.radars(z, profiles, data.features, colors)
        parts += [pn.pane.Bokeh(_rows(radar)),
                  pn.pane.Bokeh(charts.zscore_heatmap(z, profiles, data.features))]
        sample = _sample(data, mask, seed, labels, names)
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


def _sample(data: RunData, mask: np.ndarray, seed: int, labels: np.ndarray,
            names: list[str]) -> pd.DataFrame:
    rows = np.flatnonzero(mask & (labels >= 0))
    if len(rows) > SAMPLE_ROWS:
        rows = np.sort(np.random.default_rng(seed).choice(rows, SAMPLE_ROWS, replace=False))
    sample = data.tracks.iloc[rows][data.features].assign(**{CLUSTER: labels[rows]})
    return sample.assign(name=np.asarray(names, dtype=object)[labels[rows]])


def representative(data: RunData, mask: np.ndarray, per_cluster: int = 5) -> pd.DataFrame:
    """The selection's most typical tracks: nearest their cluster's centre, per cluster."""
    tracks = data.tracks
    chosen = tracks.loc[mask, [c for c in ["track_id", *LISTED, "distance"] if c in tracks]]
    return (chosen.sort_values(["distance", "track_id"])
            .groupby(CLUSTER_NAME, observed=True, sort=False).head(per_cluster)
            .sort_values([CLUSTER_NAME, "distance"]).reset_index(drop=True))


def track_table(data: RunData, mask: np.ndarray, rows: int = 200) -> pn.widgets.Tabulator:
    """The first ``rows`` tracks of the selection, most popular first where known."""
    tracks = data.tracks
    columns = [c for c in ["track_id", *LISTED, *data.features] if c in tracks]
    chosen = np.flatnonzero(mask)
    if "popularity" in tracks and len(chosen) > rows:
        popularity = np.nan_to_num(tracks["popularity"].to_numpy()[chosen], nan=-1)
        chosen = chosen[np.argsort(-popularity, kind="stable")[:rows]]
    frame = tracks.iloc[chosen[:rows]][columns].reset_index(drop=True)
    return pn.widgets.Tabulator(frame, disabled=True, pagination="local", page_size=20,
                                sizing_mode="stretch_width", show_index=False)
