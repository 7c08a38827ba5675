"""The report's views of how good and how stable the clusters are, and of every method's labels.

The silhouette plot of the run's clusters (``summary/silhouette``); one tab per labelling the
run holds (its own clusters, then each compared method's ``summary/cluster_profiles_<method>``)
with that labelling's sizes, feature z-scores and silhouette, so that a static page switches
between them with Bokeh's ``Tabs`` and no server; and the dendrogram of the agglomerative
method (``summary/dendrogram``). Each builder returns ``(model, note)`` or ``(None, note)``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from bokeh.layouts import column
from bokeh.models import ColumnDataSource, TabPanel, Tabs

from sonicatlas.contract import CLUSTER
from sonicatlas.visual import charts
from sonicatlas.visual.dendrogram import dendrogram_chart
from sonicatlas.visual.silhouette import labelling, profile_colors, silhouette_chart

SILHOUETTE_NOTE = ("Each sampled track is a bar as long as its silhouette: near 1, far nearer "
                   "its own cluster than any other; below 0, nearer another cluster. Bars are "
                   "sorted within each cluster's band; the dashed line is the mean over the "
                   "sample, the diamonds each cluster's mean.")


def silhouette_section(table: pd.DataFrame | None, profiles: pd.DataFrame):
    """The run's clusters' silhouette plot (also ``maps/silhouette.png``)."""
    chart = silhouette_chart(**labelling(table, profiles)) if table is not None else None
    if chart is None:
        return None, ""
    scored = int(table["silhouette"].notna().sum())
    return chart, f"{SILHOUETTE_NOTE} From {scored:,} of the sampled tracks."


def method_profiles(tables: dict[str, pd.DataFrame], order=()) -> dict[str, pd.DataFrame]:
    """Each compared method's profiles by name, in ``order`` first, then by name."""
    names = [n for n in order if n in tables] + sorted(set(tables) - set(order))
    return {name: tables[name].sort_values(CLUSTER, key=lambda c: c.where(c >= 0, np.inf))
            .reset_index(drop=True) for name in names}


def method_tabs(run_label: str, profiles: pd.DataFrame, methods: dict[str, pd.DataFrame],
                features: list[str], silhouettes: pd.DataFrame | None):
    """One tab per labelling: its cluster sizes, feature z-scores and silhouette plot.

    Parameters
    ----------
    run_label : str
        The first tab's title: the run's own clusters.
    profiles : pandas.DataFrame
        ``summary/cluster_profiles`` (``f_mean``, ``f_std`` give the catalog's moments).
    methods : dict of str to pandas.DataFrame
        ``summary/cluster_profiles_<method>`` by method (feature means under the features'
        names); a method whose labels equal the run's is left to the first tab.
    features : list of str
    silhouettes : pandas.DataFrame or None
        ``summary/silhouette``.

    Returns
    -------
    (bokeh.models.Tabs or None, str)
        The tabs, named ``methods``; each sizes chart's data source is named
        ``sizes-data:<tab title>``.
    """
    if not methods:
        return None, ""
    mean, spread = catalog_moments(profiles, features)
    panels = [_panel(run_label, profiles, profiles[[f"{f}_mean" for f in features]]
                     .set_axis(features, axis=1), mean, spread, features,
                     labelling(silhouettes, profiles))]
    for name, table in methods.items():
        panels.append(_panel(name, table, table[features], mean, spread, features,
                             labelling(silhouettes, table, name)))
    tabs = Tabs(tabs=panels, name="methods")
    return tabs, ("The same tracks labelled by each method; pick a tab to switch the sizes, "
                  "feature z-scores and silhouette shown. Noise (density methods) is grey.")


def _panel(title, table, means, mean, spread, features, silhouette_args) -> TabPanel:
    colors = profile_colors(table)
    table = table.assign(name=table["name"].astype(str))
    sizes = charts.cluster_sizes(table, colors)
    sizes.name = f"sizes:{title}"
    for model in sizes.references():
        if isinstance(model, ColumnDataSource) and "share" in model.data:  # the bars
            model.name = f"sizes-data:{title}"
    z = pd.DataFrame((means.to_numpy(dtype=float) - mean) / spread, columns=features)
    heat = charts.zscore_heatmap(z, table, features)
    heat.name = f"zscores:{title}"
    children = [sizes, heat]
    if silhouette_args:
        chart = silhouette_chart(**silhouette_args, name=f"silhouette:{title}")
        if chart is not None:
            children.append(chart)
    return TabPanel(child=column(children), title=title)


def catalog_moments(profiles: pd.DataFrame, features: list[str]
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Each feature's mean and standard deviation over every track, from the clusters' sizes,
    means and standard deviations (the law of total variance)."""
    n = profiles["size"].to_numpy(dtype=float)
    total, used = max(n.sum(), 1.0), n > 0
    means, spreads = [], []
    for f in features:
        mean = profiles[f"{f}_mean"].to_numpy(dtype=float)
        std = profiles[f"{f}_std"].to_numpy(dtype=float)
        grand = np.sum(n[used] * mean[used]) / total
        within = np.nansum((n[used] - 1) * std[used] ** 2)
        between = np.sum(n[used] * (mean[used] - grand) ** 2)
        means.append(grand)
        spreads.append(np.sqrt((within + between) / max(total - 1, 1.0)) or 1.0)
    return np.asarray(means), np.asarray(spreads)


def dendrogram_section(merges: pd.DataFrame | None, leaves: pd.DataFrame | None,
                       info: dict, profiles: pd.DataFrame):
    """The agglomerative method's dendrogram, coloured as ``profiles`` (its labels' table)."""
    if merges is None or leaves is None or not len(merges):
        return None, ""
    colors = dict(zip(profiles[CLUSTER], profile_colors(profiles), strict=True))
    names = dict(zip(profiles[CLUSTER], profiles["name"].astype(str), strict=True))
    k = int(info.get("k") or leaves["cluster"].nunique())
    linkage = info.get("linkage", "ward")
    chart = dendrogram_chart(merges, leaves, names, colors, k,
                             f"{linkage.capitalize()} linkage: the last {len(merges)} merges "
                             f"of the agglomerative sample, cut at k={k}")
    note = (f"Agglomerative clustering merges its sample of {int(leaves['size'].sum()):,} "
            f"tracks two groups at a time; shown are its last merges, over {len(leaves)} "
            "groups (dots, coloured by their cluster; hover for their tracks). The height "
            "of a merge is how much it costs; the dashed line cuts the tree into the "
            f"{k} clusters.")
    return chart, note
