"""The run's maps: the canvas bounds and every PNG drawn from the scored tracks' bins (the
cluster map, density, one per feature, and one per extra projection)."""

from __future__ import annotations

import dask.dataframe as dd
import numpy as np
import pandas as pd

from sonicatlas.config import MapConfig
from sonicatlas.contract import CLUSTER, PC1, PC2, projection_columns
from sonicatlas.visual import maps, raster
from sonicatlas.visual.axes import axis_labels, projection_title

#: The maps show the tracks between these percentiles of each axis (plus a margin): a few
#: outlying tracks would otherwise stretch the axes until the catalog fills a corner.
MAP_PERCENTILES = (0.1, 99.9)
MAP_SAMPLE = 500_000


def map_grid(points: dd.DataFrame, config: MapConfig, axes: tuple[str, str] = (PC1, PC2)
             ) -> raster.PixelGrid:
    """The maps' canvas: the 0.1-99.9 percentiles of ``pc1`` and ``pc2`` (or the ``axes``
    columns) plus 2 %, from a reproducible sample of at most ``MAP_SAMPLE`` tracks (two small
    passes); the tracks beyond are left off the maps and counted in their note.

    ``points`` needs only the axes: the persisted scores have them, without the tracks.
    """
    rows = len(points)
    sample = points[list(axes)]
    if rows > MAP_SAMPLE:  # dask's own quantiles merge per-partition ones: too rough here
        sample = sample.sample(frac=MAP_SAMPLE / rows, random_state=0)
    values = sample.compute().to_numpy(dtype=np.float64)
    if not len(values):
        values = np.zeros((1, 2))
    low, high = (np.nanpercentile(values, MAP_PERCENTILES, axis=0))
    pad = 0.02 * np.where(high > low, high - low, 1.0)
    return raster.PixelGrid((float(low[0] - pad[0]), float(high[0] + pad[0])),
                            (float(low[1] - pad[1]), float(high[1] + pad[1])),
                            config.width, config.height)


def map_images(bins, grid: raster.PixelGrid, names: list[str], profiles: pd.DataFrame,
               features: tuple[str, ...], pca_table: pd.DataFrame | None = None) -> dict:
    """Every map of a run by file name, from :func:`sonicatlas.visual.raster.bin_reduction`'s bins:
    clusters, density (their total), and one per feature. The cluster map's axes name their
    loadings (``pca_table``: :func:`pca_table`) and a note counts the tracks outside it."""
    frame = {"x_range": grid.x_range, "y_range": grid.y_range}
    images = {"clusters.png": maps.cluster_image(
        bins["clusters"], names=names, sizes=profiles["size"].tolist(),
        title="Tracks by cluster, PC1 x PC2", axes=axis_labels(pca_table),
        note=_clipped_note(bins, profiles), **frame)}
    for name, image in maps.feature_images(bins, features, **frame).items():
        images["density.png" if name == "density" else f"features/{name}.png"] = image
    return images


def _clipped_note(bins, profiles: pd.DataFrame) -> str:
    total = int(profiles["size"].sum())
    clipped = total - int(bins["clusters"].sum())
    return (f"{clipped:,} tracks ({clipped / total:.2%}) beyond the {MAP_PERCENTILES[0]:g}-"
            f"{MAP_PERCENTILES[1]:g} percentiles of either axis are clipped from view"
            if clipped > 0 and total else "")


def projection_images(scores: dd.DataFrame, projections, names: list[str],
                      profiles: pd.DataFrame, config: MapConfig) -> dict:
    """``clusters_<name>.png`` for each projection but PCA, drawn as ``clusters.png`` is
    (:func:`sonicatlas.visual.maps.cluster_image` over its own grid and bins).

    ``scores`` holds ``cluster`` and each projection's two columns (persisted).
    """
    images = {}
    for name in projections:
        if name == "pca":
            continue
        first, second = projection_columns(name)
        grid = map_grid(scores, config, axes=(first, second))
        points = scores[[first, second, CLUSTER]].rename(columns={first: PC1, second: PC2})
        bins = raster.bin_points(points, grid, n_clusters=len(names))
        label = projection_title(name)
        images[f"clusters_{name}.png"] = maps.cluster_image(
            bins["clusters"], names=names, sizes=profiles["size"].tolist(),
            title=f"Tracks by cluster, {label} 1 x {label} 2",
            axes=(f"{label} 1", f"{label} 2"), note=_clipped_note(bins, profiles),
            x_range=grid.x_range, y_range=grid.y_range)
    return images


def render_maps(scored: dd.DataFrame, names: list[str], profiles: pd.DataFrame,
                config: MapConfig, features: tuple[str, ...]) -> dict:
    """:func:`map_images` with the grid and the bins computed from ``scored`` here."""
    grid = map_grid(scored, config)
    bins = raster.bin_points(scored[[PC1, PC2, CLUSTER, *features]], grid,
                             n_clusters=len(names), features=features)
    return map_images(bins, grid, names, profiles, features)
