"""The charts of a run's HTML report, as Bokeh models built with HoloViews or Bokeh.

Every builder returns a Bokeh layout named after its section (the page template places it by
that name), or ``None`` when the tables it needs are missing. Clusters are labelled by name
and coloured with :func:`sonicatlas.visual.maps.cluster_colors`, so the charts match the map.
"""

from __future__ import annotations

import holoviews as hv
import numpy as np
import pandas as pd
from bokeh.layouts import gridplot
from bokeh.models import ColumnDataSource, HoverTool, NumeralTickFormatter, Range1d
from bokeh.plotting import figure

# Canvas, not WebGL: a report must draw the same in any browser, GPU or not, and the
# charts are small. An instance, so HoloViews' shared renderer is left as it was.
_RENDERER = hv.renderer("bokeh").instance(webgl=False)

#: Features with no natural 0..1 scale, and how they are shown.
_SHOWN = {"loudness": ("loudness (dB)", 1.0), "tempo": ("tempo (BPM)", 1.0),
          "duration_ms": ("duration (min)", 1 / 60_000)}
DIVERGING = "RdBu_r"  # blue below the catalog mean, red above; white at 0
_WIDTH = 1100  # page content width in pixels


def label(feature: str) -> str:
    """How a feature is named on an axis."""
    return _SHOWN.get(feature, (feature, 1.0))[0]


def _scale(feature: str) -> float:
    return _SHOWN.get(feature, (feature, 1.0))[1]


def _render(obj, name: str):
    model = _RENDERER.get_plot_state(obj)
    model.name = name
    return model


def _opts(obj, **options):
    return obj.opts(backend="bokeh", **options)


def _ink(values: pd.Series, bound: float) -> list[str]:
    # White text on the saturated ends of the diverging colormap, dark text elsewhere.
    return ["#ffffff" if abs(v) > 0.6 * bound else "#222222" for v in values.fillna(0)]


def cluster_sizes(profiles: pd.DataFrame, colors: list[str]):
    """Horizontal bar per cluster: its track count, labelled with its share."""
    frame = profiles[["name", "size", "share"]].assign(color=colors)
    frame = frame.iloc[::-1]  # bokeh draws the first category at the bottom
    frame["text"] = [f" {n:,} ({s:.1%})" for n, s in zip(frame["size"], frame["share"],
                                                          strict=True)]
    bars = _opts(hv.Bars(frame, "name", ["size", "share", "color"]),
                 color="color", line_color=None, invert_axes=True, tools=["hover"],
                 hover_tooltips=[("cluster", "@name"), ("tracks", "@size{0,0}"),
                                 ("share", "@share{0.0%}")])
    text = _opts(hv.Labels(frame, ["name", "size"], "text"), invert_axes=True,
                 text_align="left", text_font_size="9pt", text_color="#444444")
    plot = _opts(bars * text, title="Cluster sizes", xlabel="", ylabel="tracks",
                 width=_WIDTH, height=60 + 34 * len(frame), show_grid=True,
                 ylim=(0, float(frame["size"].max() or 1) * 1.18), toolbar=None)
    return _render(plot, "sizes")


def radars(z: pd.DataFrame, profiles: pd.DataFrame, features: list[str], colors: list[str]):
    """A radar ("sonic fingerprint") per cluster: each feature's z-score against the catalog.

    Bokeh has no polar axes, so the rings, spokes and polygon are drawn in cartesian
    coordinates; radius 0 is ``-limit`` standard deviations, the dashed ring the catalog mean.
    """
    limit = float(np.clip(np.ceil(np.nanmax(np.abs(z.to_numpy()), initial=1.0)), 2, 4))
    n = len(features)
    angle = np.pi / 2 - 2 * np.pi * np.arange(n) / n  # clockwise from the top
    figures = []
    for i, row in profiles.reset_index(drop=True).iterrows():
        values = z.iloc[i].to_numpy(dtype=float)
        radius = np.clip((np.nan_to_num(values) + limit) / (2 * limit), 0, 1)
        fig = figure(width=270, height=290, title=f"{row['name']}  ({int(row['size']):,})",
                     x_range=Range1d(-1.55, 1.55), y_range=Range1d(-1.3, 1.3),
                     tools="", toolbar_location=None, match_aspect=True)
        fig.title.text_color = "#222222"
        fig.title.text_font_size = "10pt"
        fig.axis.visible = False
        fig.grid.visible = False
        fig.outline_line_color = colors[i]
        fig.outline_line_width = 2
        rings = np.arange(0, 2 * limit + 0.5) / (2 * limit)  # one per standard deviation
        fig.circle(np.zeros_like(rings), 0, radius=rings, fill_color=None,
                   line_color="#c8c8c8", line_width=0.7)
        fig.circle(0, 0, radius=0.5, fill_color=None, line_color="#777777",
                   line_dash="dashed", line_width=1.2)
        fig.segment(0, 0, np.cos(angle), np.sin(angle), line_color="#cccccc", line_width=0.6)
        fig.text(1.12 * np.cos(angle), 1.12 * np.sin(angle), [label(f) for f in features],
                 text_font_size="7.5pt", text_align="center", text_baseline="middle",
                 text_color="#555555")
        x, y = radius * np.cos(angle), radius * np.sin(angle)
        fig.patch(x, y, fill_color=colors[i], fill_alpha=0.35, line_color=colors[i],
                  line_width=2)
        source = ColumnDataSource({"x": x, "y": y, "feature": features, "z": values,
                                   "mean": [row.get(f"{f}_mean", np.nan) for f in features]})
        dots = fig.scatter("x", "y", source=source, size=6, color=colors[i])
        fig.add_tools(HoverTool(renderers=[dots], tooltips=[
            ("feature", "@feature"), ("mean", "@mean{0.000}"), ("z", "@z{+0.00}")]))
        figures.append(fig)
    grid = gridplot(figures, ncols=4, toolbar_location=None)
    grid.name = "radars"
    return grid, limit


def zscore_heatmap(z: pd.DataFrame, profiles: pd.DataFrame, features: list[str]):
    """Clusters x features, coloured by the z-score of the cluster mean (0 = catalog mean)."""
    names = list(profiles["name"])
    long = pd.DataFrame({"feature": np.tile([label(f) for f in features], len(names)),
                         "cluster": np.repeat(names, len(features)),
                         "z": z.to_numpy(dtype=float).ravel()})
    long["text"] = long["z"].map(lambda v: "" if np.isnan(v) else f"{v:+.1f}")
    bound = float(max(1.0, np.nanmax(np.abs(long["z"]), initial=1.0)))
    long["ink"] = _ink(long["z"], bound)
    heat = _opts(hv.HeatMap(long, ["feature", "cluster"], "z"),
                 cmap=DIVERGING, clim=(-bound, bound), colorbar=True, clabel="z-score",
                 tools=["hover"], line_color="white", xrotation=30, invert_yaxis=True)
    text = _opts(hv.Labels(long, ["feature", "cluster"], ["text", "ink"]),
                 text_font_size="8pt", text_color="ink")
    plot = _opts(heat * text, title="Cluster means against the catalog (z-score)",
                 width=_WIDTH, height=120 + 40 * len(names), xlabel="", ylabel="",
                 toolbar=None)
    return _render(plot, "zscores")


def boxes_from_sample(sample: pd.DataFrame, profiles: pd.DataFrame, features: list[str],
                      colors: list[str]):
    """Box and whiskers of each feature by cluster, from the stored track sample.

    Tukey's boxes (whiskers at the furthest value within 1.5 IQR, dots beyond), computed
    with numpy and drawn with Bokeh (HoloViews' ``BoxWhisker`` is slow for ten features).
    """
    names = list(profiles["name"])
    labels = sample["cluster"].to_numpy()
    figures = []
    for f in features:
        values = sample[f].to_numpy(dtype=np.float64) * _scale(f)
        boxes, outliers = [], []
        for cluster, name, color in zip(profiles["cluster"], names, colors, strict=True):
            mine = values[(labels == cluster) & ~np.isnan(values)]
            if len(mine) == 0:
                continue
            q25, median, q75 = np.percentile(mine, [25, 50, 75])
            reach = 1.5 * (q75 - q25)
            low = mine[mine >= q25 - reach].min()
            high = mine[mine <= q75 + reach].max()
            boxes.append({"cluster": name, "color": color, "q25": q25, "median": median,
                          "q75": q75, "low": low, "high": high})
            beyond = mine[(mine < low) | (mine > high)]
            outliers.append(pd.DataFrame({"cluster": name, "value": beyond}))
        fig, source = _box_figure(f, names, pd.DataFrame(boxes))
        fig.segment(x0="low", x1="q25", y0="cluster", y1="cluster", source=source,
                    line_color="#555555", level="underlay")
        fig.segment(x0="q75", x1="high", y0="cluster", y1="cluster", source=source,
                    line_color="#555555", level="underlay")
        if outliers:
            fig.scatter(x="value", y="cluster", size=3, fill_color="#888888", fill_alpha=0.25,
                        line_color=None, source=ColumnDataSource(pd.concat(outliers)))
        figures.append(fig)
    grid = gridplot(figures, ncols=2, toolbar_location=None)
    grid.name = "boxes"
    return grid


def boxes_from_quartiles(profiles: pd.DataFrame, features: list[str], colors: list[str]):
    """Interquartile box and median of each feature by cluster, from the profile columns."""
    names = list(profiles["name"])
    figures = []
    for f in features:
        s = _scale(f)
        fig, _ = _box_figure(f, names, pd.DataFrame({
            "cluster": names, "color": colors, "q25": profiles[f"{f}_q25"] * s,
            "median": profiles[f"{f}_median"] * s, "q75": profiles[f"{f}_q75"] * s}))
        figures.append(fig)
    grid = gridplot(figures, ncols=2, toolbar_location=None)
    grid.name = "boxes"
    return grid


def _box_figure(feature: str, names: list[str], boxes: pd.DataFrame):
    """A feature's figure with each cluster's interquartile box and median mark."""
    source = ColumnDataSource(boxes)
    fig = figure(y_range=names[::-1], width=_WIDTH // 2 - 10, height=70 + 30 * len(names),
                 title=label(feature), tools="", toolbar_location=None)
    bars = fig.hbar(y="cluster", left="q25", right="q75", height=0.7, source=source,
                    fill_color="color", line_color="#333333")
    fig.scatter(x="median", y="cluster", marker="dash", size=18, angle=np.pi / 2,
                line_color="#111111", line_width=2, source=source)
    fig.add_tools(HoverTool(renderers=[bars], tooltips=[
        ("cluster", "@cluster"), ("q25", "@q25{0.000}"), ("median", "@median{0.000}"),
        ("q75", "@q75{0.000}")]))
    fig.ygrid.visible = False
    return fig, source


def correlation(matrix: pd.DataFrame, title: str):
    """Feature x feature Pearson correlation, diverging around 0."""
    features = list(matrix.columns)
    long = matrix.rename(index=label, columns=label).stack().rename("r").reset_index()
    long.columns = ["x", "y", "r"]
    long["text"] = long["r"].map(lambda v: f"{v:.2f}")
    long["ink"] = _ink(long["r"], 1.0)
    heat = _opts(hv.HeatMap(long, ["x", "y"], "r"), cmap=DIVERGING, clim=(-1, 1),
                 clabel="Pearson r", colorbar=True, tools=["hover"], line_color="white",
                 xrotation=35, invert_yaxis=True)
    text = _opts(hv.Labels(long, ["x", "y"], ["text", "ink"]), text_font_size="8pt",
                 text_color="ink")
    size = 180 + 48 * len(features)
    plot = _opts(heat * text, title=title, width=size + 120, height=size, xlabel="",
                 ylabel="", toolbar=None)
    return _render(plot, "correlation")


#: (measure, its baseline on structureless data, title).
_SWEEP = (("sse", None, "Elbow: within-cluster sum of squares"),
          ("silhouette_mean", "null_silhouette", "Silhouette (higher is better)"),
          ("davies_bouldin", "null_davies_bouldin", "Davies-Bouldin (lower is better)"),
          ("calinski_harabasz", "null_calinski_harabasz", "Calinski-Harabasz (higher is better)"),
          ("gap", None, "Gap: log cost on shuffled data minus on the tracks"))
CHOSEN_COLOR, ELBOW_COLOR, LINE_COLOR = "#D55E00", "#666666", "#0072B2"


def k_sweep(sweep: pd.DataFrame):
    """One curve per quality measure against k: the chosen k, the elbow and baselines marked.

    Returns ``None`` when the table has none of the measures.
    """
    sweep = sweep.sort_values("k").reset_index(drop=True)
    marks = [_opts(hv.VLine(float(k)), color=color, line_dash=dash, line_width=1.5)
             for flag, color, dash in (("chosen", CHOSEN_COLOR, "dashed"),
                                       ("elbow", ELBOW_COLOR, "dotted")) if flag in sweep
             for k in sweep.loc[sweep[flag].astype(bool), "k"]]
    plots = []
    for column, null, title in _SWEEP:
        if column not in sweep or sweep[column].isna().all():
            continue
        layers = []
        spread = {"silhouette_mean": "silhouette_std", "gap": "gap_se"}.get(column)
        if spread in sweep:
            layers.append(_opts(hv.Spread(sweep, "k", [column, spread]),
                                color=LINE_COLOR, fill_alpha=0.2, line_alpha=0))
        if null in sweep and sweep[null].notna().any():
            layers.append(_opts(hv.Curve(sweep, "k", null), color=ELBOW_COLOR,
                                line_dash="dashed", line_width=1.5))
        stable = sweep["stable"].astype(bool) if "stable" in sweep else pd.Series(True, sweep.index)
        layers += [_opts(hv.Curve(sweep, "k", column), color=LINE_COLOR, line_width=2),
                   _opts(hv.Scatter(sweep[stable], "k", column), color=LINE_COLOR, size=7,
                         tools=["hover"]),
                   _opts(hv.Scatter(sweep[~stable], "k", column), fill_color="white",
                         line_color=LINE_COLOR, size=7, line_width=2, tools=["hover"])]
        plots.append(_opts(hv.Overlay(layers + marks), title=title, xlabel="k", ylabel="",
                           width=_WIDTH // 2 - 10, height=260, show_grid=True, toolbar=None,
                           padding=0.06, yformatter=NumeralTickFormatter(format="0.[00]a")))
    if not plots:
        return None
    layout = _opts(hv.Layout(plots).cols(2), shared_axes=False, toolbar=None)
    return _render(layout, "k_sweep")
