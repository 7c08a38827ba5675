"""The dendrogram of a hierarchical method: the top of its merge tree, cut at the run's k.

SciPy's ``dendrogram(no_plot=True)`` lays the tree out (leaf order, the U of each merge);
Bokeh draws it. Each leaf is a group of the method's sample tracks (``summary/dendrogram_leaves``),
coloured by the cluster its tracks fall in; merges below the cut take their cluster's colour,
those above it are grey, and a dashed line marks the cut that leaves ``k`` clusters.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from bokeh.models import ColumnDataSource, HoverTool, Span
from bokeh.plotting import figure
from scipy.cluster.hierarchy import dendrogram

ABOVE_CUT = "#888888"
CUT_COLOR = "#D55E00"


def cut_height(heights: np.ndarray, k: int) -> float:
    """A height between the merges that leave ``k`` clusters and the next one up."""
    heights = np.sort(np.asarray(heights, dtype=np.float64))
    below = len(heights) - (k - 1)  # merges under the cut
    if below <= 0:
        return 0.0
    if below >= len(heights):
        return float(heights[-1]) * 1.05
    return float(heights[below - 1] + heights[below]) / 2


def layout(merges: pd.DataFrame) -> dict:
    """SciPy's dendrogram layout of ``summary/dendrogram`` (merges over leaves 0..m-1)."""
    n_leaves = len(merges) + 1
    linkage = merges[["left", "right", "height"]].to_numpy(dtype=np.float64)
    counts = np.ones(2 * n_leaves - 1)  # leaves under each node: what SciPy checks
    for i, (a, b, _) in enumerate(linkage):
        counts[n_leaves + i] = counts[int(a)] + counts[int(b)]
    return dendrogram(np.column_stack([linkage, counts[n_leaves:]]), no_plot=True)


def dendrogram_chart(merges: pd.DataFrame, leaves: pd.DataFrame, names: dict, colors: dict,
                     k: int, title: str, *, name: str = "dendrogram", width: int = 1100):
    """The dendrogram as a Bokeh figure named ``name``.

    Parameters
    ----------
    merges, leaves : pandas.DataFrame
        ``summary/dendrogram`` and ``summary/dendrogram_leaves``.
    names, colors : dict
        Each cluster id's name and colour.
    k : int
        The clusters the tree is cut into.
    title : str
    """
    n_leaves = len(leaves)
    leaf_cluster = leaves.set_index("leaf")["cluster"].to_dict()
    cluster_of = {leaf: int(c) for leaf, c in leaf_cluster.items()}
    cut = cut_height(merges["height"], k)
    for i, row in enumerate(merges.itertuples(index=False)):
        a, b = cluster_of.get(int(row.left)), cluster_of.get(int(row.right))
        cluster_of[n_leaves + i] = a if a == b and row.height < cut else None
    tree = layout(merges)
    node_of_link = _link_nodes(tree, merges, n_leaves)
    xs, ys, link_colors = [], [], []
    for icoord, dcoord, node in zip(tree["icoord"], tree["dcoord"], node_of_link, strict=True):
        xs.append(list(icoord))
        ys.append(list(dcoord))
        cluster = cluster_of.get(node)
        link_colors.append(colors.get(cluster, ABOVE_CUT) if cluster is not None else ABOVE_CUT)
    fig = figure(width=width, height=380, title=title, tools="", toolbar_location=None,
                 y_axis_label="merge height (Ward distance)")
    fig.multi_line(xs, ys, line_color=link_colors, line_width=2)
    order = tree["leaves"]
    leaf_rows = leaves.set_index("leaf").loc[order]
    source = ColumnDataSource({
        "x": 5.0 + 10.0 * np.arange(len(order)), "y": np.zeros(len(order)),
        "leaf": order, "size": leaf_rows["size"].to_numpy(),
        "cluster": [names.get(int(c), str(c)) for c in leaf_rows["cluster"]],
        "color": [colors.get(int(c), ABOVE_CUT) for c in leaf_rows["cluster"]]})
    dots = fig.scatter("x", "y", source=source, size=10, fill_color="color",
                       line_color="#222222")
    fig.add_tools(HoverTool(renderers=[dots], tooltips=[
        ("cluster", "@cluster"), ("sample tracks", "@size{0,0}")]))
    fig.add_layout(Span(location=cut, dimension="width", line_color=CUT_COLOR,
                        line_dash="dashed", line_width=2))
    fig.xaxis.visible = False
    fig.xgrid.visible = False
    fig.name = name
    return fig


def _link_nodes(tree: dict, merges: pd.DataFrame, n_leaves: int) -> list[int]:
    """The merge each drawn link is, found by where its two children stand (SciPy draws the
    links in its own order): a leaf at ``5 + 10 * position``, a merge midway between its
    children, as SciPy places them."""
    x = {int(leaf): 5.0 + 10.0 * i for i, leaf in enumerate(tree["leaves"])}
    node_at = {}
    for i, row in enumerate(merges.itertuples(index=False)):
        a, b = x[int(row.left)], x[int(row.right)]
        x[n_leaves + i] = (a + b) / 2
        node_at[(round(min(a, b), 6), round(max(a, b), 6))] = n_leaves + i
    return [node_at[(round(min(c[0], c[3]), 6), round(max(c[0], c[3]), 6))]
            for c in tree["icoord"]]
