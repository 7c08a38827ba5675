"""Points binned onto a pixel grid: counts per cluster and feature means, in one pass.

The bins are exactly those of Datashader's ``Canvas.points`` (same scale, translate,
truncation and edge rules, same coordinates), and the result is the same xarray, so
Datashader's transfer functions shade it. The binning is our own (small compiled loops,
cached on disk) rather than Datashader's aggregation because Datashader compiles its
aggregation with numba from generated source in every new process, which numba cannot
cache: a cost paid by each worker and the client in every run, larger than the binning
itself (docs/benchmarks.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import datashader as ds
import numba
import numpy as np
import pandas as pd
import xarray as xr

from sonicatlas.summaries.scan import Reduction, scan

X, Y, CLUSTER = "pc1", "pc2", "cluster"


@dataclass(frozen=True)
class PixelGrid:
    """A ``width`` x ``height`` canvas over ``x_range`` x ``y_range`` (both ends inclusive)."""

    x_range: tuple[float, float]
    y_range: tuple[float, float]
    width: int = 900
    height: int = 700

    def _scales(self):
        canvas = ds.Canvas(plot_width=self.width, plot_height=self.height,
                           x_range=self.x_range, y_range=self.y_range)
        return (canvas.x_axis.compute_scale_and_translate(self.x_range, self.width),
                canvas.y_axis.compute_scale_and_translate(self.y_range, self.height), canvas)

    def coords(self) -> dict[str, np.ndarray]:
        """Pixel-centre coordinates, as Datashader gives them."""
        x_st, y_st, canvas = self._scales()
        return {Y: canvas.y_axis.compute_index(y_st, self.height),
                X: canvas.x_axis.compute_index(x_st, self.width)}

    def pixels(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Flat pixel index (row-major, ``y`` first) of each point and whether it is on the grid.

        Parameters
        ----------
        x, y : numpy.ndarray
            Point coordinates (any float dtype; NaN is off the grid).

        Returns
        -------
        index : numpy.ndarray of int64
            ``iy * width + ix`` for points on the grid (meaningless elsewhere).
        inside : numpy.ndarray of bool
        """
        (sx, tx), (sy, ty), _ = self._scales()
        # float64 as numba promotes float32 * float64; points on the top edge go to the last
        # pixel; NaN fails both comparisons, so it is off the grid
        x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
        inside = ((x >= self.x_range[0]) & (x <= self.x_range[1])
                  & (y >= self.y_range[0]) & (y <= self.y_range[1]))
        ix = np.minimum(np.where(inside, x * sx + tx, 0).astype(np.int64), self.width - 1)
        iy = np.minimum(np.where(inside, y * sy + ty, 0).astype(np.int64), self.height - 1)
        return iy * self.width + ix, inside


def _bin_partition(part: pd.DataFrame, grid: PixelGrid, n_clusters: int | None,
                   features: tuple[str, ...]) -> dict[str, np.ndarray]:
    index, inside = grid.pixels(part[X].to_numpy(), part[Y].to_numpy())
    size = grid.width * grid.height
    # counts travel as uint32, as Datashader keeps them: partials are summed across workers
    sums = {"count": np.zeros(size, dtype=np.uint32)}
    if n_clusters is None:
        _count_by_pixel(index, inside, np.zeros(len(index), dtype=np.int64), 0, sums["count"],
                        np.zeros(0, dtype=np.uint32))
    else:
        sums["clusters"] = np.zeros(size * n_clusters, dtype=np.uint32)
        # noise (-1) is counted, not drawn
        _count_by_pixel(index, inside, part[CLUSTER].to_numpy(dtype=np.int64, na_value=-1),
                        n_clusters, sums["count"], sums["clusters"])
    for name in features:
        values = part[name].to_numpy()  # float32 for the scored tracks: no copy
        if values.dtype.kind != "f":
            values = part[name].to_numpy(dtype=np.float64, na_value=np.nan)
        sums[f"sum:{name}"] = total = np.zeros(size)
        if _add_by_pixel(index, inside, values, total):  # a mean skips missing values, as
            known = inside & ~np.isnan(values)  # Datashader's does
            sums[f"n:{name}"] = np.bincount(index[known], minlength=size).astype(np.uint32)
    return sums


@numba.njit(cache=True, nogil=True)
def _count_by_pixel(index, inside, codes, k, count, clusters):  # pragma: no cover - numba
    """Points per pixel into ``count``; per pixel and cluster ``0..k-1`` into ``clusters``
    (pixel-major, ``k`` a pixel). Straight into uint32: ``bincount`` made int64 arrays
    twice the size, then copies."""
    for i in range(len(index)):
        if inside[i]:
            count[index[i]] += 1
            if 0 <= codes[i] < k:
                clusters[index[i] * k + codes[i]] += 1


@numba.njit(cache=True, nogil=True)
def _add_by_pixel(index, inside, values, out):  # pragma: no cover - numba
    """``out[index[i]] += values[i]`` for the points on the grid, in order (``bincount``'s
    sums, bit for bit), skipping NaN; returns how many were skipped. No float64 copy and no
    masked copy of the column."""
    missing = 0
    for i in range(len(index)):
        if inside[i]:
            value = np.float64(values[i])
            if np.isnan(value):
                missing += 1
            else:
                out[index[i]] += value
    return missing


def _add(a: dict, b: dict) -> dict:
    out = {key: a[key] + b[key] for key in a.keys() & b.keys()}
    # a per-feature count is kept only where values were missing; elsewhere it is "count"
    for key in a.keys() ^ b.keys():
        has, other = (a, b) if key in a else (b, a)
        out[key] = has[key] + other["count"]
    return out


def bin_points(points, grid: PixelGrid, *, n_clusters: int | None = None,
               features: tuple[str, ...] | list[str] = ()) -> xr.Dataset:
    """Count points per pixel (and per cluster) and average features per pixel, in one pass.

    Parameters
    ----------
    points : pandas.DataFrame or dask.dataframe.DataFrame
        Float columns ``pc1`` and ``pc2``; integer ``cluster`` when ``n_clusters`` is given;
        the ``features``.
    grid : PixelGrid
        The canvas; points outside it are not counted.
    n_clusters : int, optional
        Count per cluster ``0..n_clusters-1`` too (other labels, e.g. noise, are left out).
    features : sequence of str
        Columns to average per pixel (missing values skipped; NaN where a pixel has none).

    Returns
    -------
    xarray.Dataset
        ``count`` (uint32, dims ``(pc2, pc1)``), ``clusters`` (uint32, dims
        ``(pc2, pc1, cluster)``) when ``n_clusters`` is given, and one float64 mean per
        feature: the arrays Datashader's ``Canvas.points`` gives for ``ds.count()``,
        ``ds.by("cluster", ds.count())`` and ``ds.mean(name)``.
    """
    if isinstance(points, pd.DataFrame):
        return _dataset(_bin_partition(points, grid, n_clusters, tuple(features)), grid,
                        n_clusters, tuple(features))
    return scan(points, {"bins": bin_reduction(grid, n_clusters=n_clusters,
                                               features=features)})["bins"]


def bin_reduction(grid: PixelGrid, *, n_clusters: int | None = None,
                  features: tuple[str, ...] | list[str] = ()) -> Reduction:
    """:func:`bin_points` as a :class:`~sonicatlas.summaries.scan.Reduction`, for one shared pass.

    Each partition's partial sums (~85 MB on a 900 x 700 grid with 6 clusters and 10
    features) are added in a tree on the workers; only the total reaches the client.
    """
    features = tuple(features)
    return Reduction(partial=lambda part, _: _bin_partition(part, grid, n_clusters, features),
                     combine=_add,
                     finish=lambda sums: _dataset(sums, grid, n_clusters, features))


def _dataset(sums: dict, grid: PixelGrid, n_clusters: int | None, features: tuple[str, ...]
             ) -> xr.Dataset:
    shape, coords = (grid.height, grid.width), grid.coords()
    count = sums["count"].reshape(shape)
    data = {"count": ((Y, X), count.astype(np.uint32))}
    if n_clusters is not None:
        data["clusters"] = ((Y, X, CLUSTER),
                            sums["clusters"].reshape(*shape, n_clusters).astype(np.uint32))
        coords[CLUSTER] = np.arange(n_clusters)
    with np.errstate(invalid="ignore", divide="ignore"):
        for name in features:
            n = sums.get(f"n:{name}", sums["count"]).reshape(shape)
            data[name] = ((Y, X), np.where(n > 0, sums[f"sum:{name}"].reshape(shape) / n, np.nan))
    return xr.Dataset(data, coords=coords)
