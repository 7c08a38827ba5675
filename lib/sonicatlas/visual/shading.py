"""The maps' pixel colours: Datashader's ``tf.shade`` rules, computed on occupied pixels only.

``tf.shade`` works on every pixel of the canvas, in float64 copies of it (three per colormap
channel), and its clip to a fixed span is a numba function compiled in every new process. A
map leaves most of its canvas empty, and an empty pixel is transparent whatever the rule, so
the same arithmetic on the occupied pixels alone gives the same image for a fraction of the
work. Each function returns what ``tf.shade`` returns: packed RGBA (``uint32``, Datashader's
byte order), in the aggregate's orientation.
"""

from __future__ import annotations

import datashader.transfer_functions as tf
import numpy as np
import xarray as xr
from datashader.colors import rgb


def cluster_rgba(counts: np.ndarray, colors: list[str], *, weights: np.ndarray | None = None,
                 min_alpha: int = 100) -> np.ndarray:
    """Colours by cluster: ``tf.shade(counts, color_key=colors, how="eq_hist", min_alpha=...,
    rescale_discrete_levels=True)``, with each cluster's counts weighted first.

    Parameters
    ----------
    counts : numpy.ndarray
        Unsigned counts, shape ``(height, width, n_clusters)``.
    colors : list of str
        One hex colour per cluster.
    weights : numpy.ndarray, optional
        Per cluster; a count ``c`` is shaded as ``ceil(c * weights[i])`` (an unsigned count of
        the same dtype, so that an empty pixel stays empty).
    min_alpha : int
        Alpha of the least dense occupied pixels; the densest get 255.

    Returns
    -------
    numpy.ndarray of uint32, shape ``(height, width)``
        A pixel's colour is the count-weighted mean of its clusters' colours; its alpha is the
        histogram-equalised rank of its (weighted) total.
    """
    height, width, k = counts.shape
    flat = counts.reshape(-1, k)
    occupied = flat[:, 0] != 0  # a column at a time: any(axis=1) over k columns is slower
    for column in range(1, k):
        occupied |= flat[:, column] != 0
    occupied = np.flatnonzero(occupied)
    if len(occupied) == height * width:
        # no empty pixel: Datashader then subtracts the smallest count from every cell and
        # ranks totals as integers, another rule; rare enough to leave to Datashader itself
        if weights is not None:
            counts = np.ceil(counts * weights).astype(counts.dtype)
        agg = xr.DataArray(counts, dims=("y", "x", "cluster"),
                           coords={"cluster": np.arange(k)})
        return tf.shade(agg, color_key=colors, how="eq_hist", min_alpha=min_alpha,
                        rescale_discrete_levels=True).data
    data = flat[occupied]
    if weights is not None:
        scaled = data * weights  # float64, rounded up to whole counts in place
        data = np.ceil(scaled, out=scaled).astype(counts.dtype)
        if (weights == 0).any():  # a weight of 0 empties pixels
            kept = data.any(axis=1)
            occupied, data = occupied[kept], data[kept]
    if not len(occupied):
        return np.zeros((height, width), dtype=np.uint32)
    # Datashader's arithmetic, in its dtypes: float32 mean colour, truncated
    values = data.astype(np.float32)
    palette = np.array([rgb(c) for c in colors], dtype=np.float32)
    total = values.sum(axis=1)
    mixed = [(_dot(values, palette[:, channel]) / total).astype(np.uint8)
             for channel in range(3)]
    totals = data.sum(axis=1)  # uint64, as Datashader sums
    # float after the offset, as Datashader's masked totals are: eq_hist bins, not levels
    ranks, levels = tf.eq_hist(totals.astype(np.float64) - totals.min())
    span = _rescale_discrete_levels(levels, (ranks.min(), ranks.max()))
    alpha = np.interp(ranks, np.hstack(span), np.array([min_alpha, 255]), left=0, right=255)
    return _pack(occupied, (height, width), *mixed, np.nan_to_num(alpha).astype(np.uint8))


def density_rgba(counts: np.ndarray, cmap: list[str]) -> np.ndarray:
    """``tf.shade(counts, cmap=cmap, how="eq_hist", rescale_discrete_levels=True)``.

    Parameters
    ----------
    counts : numpy.ndarray
        Unsigned counts (0 is no data) or floats (NaN is no data), shape ``(height, width)``.
    cmap : list of str
        Hex colours from the sparsest to the densest pixels.

    Returns
    -------
    numpy.ndarray of uint32, shape ``(height, width)``
    """
    occupied, values = _occupied(counts)
    if values is None:
        return _shade_all(counts, cmap, how="eq_hist", rescale_discrete_levels=True)
    if not len(occupied):
        return np.zeros(counts.shape, dtype=np.uint32)
    ranks, levels = tf.eq_hist(values - values.min())
    span = _rescale_discrete_levels(levels, (ranks.min(), ranks.max()))
    return _colormap(occupied, counts.shape, ranks, span, cmap)


def linear_rgba(values: np.ndarray, cmap: list[str], span: tuple[float, float]) -> np.ndarray:
    """``tf.shade(values, cmap=cmap, how="linear", span=span)``.

    Parameters
    ----------
    values : numpy.ndarray
        float64, NaN where a pixel has no data, shape ``(height, width)``.
    cmap : list of str
        Hex colours from ``span[0]`` to ``span[1]``; values beyond are clipped to it.
    span : tuple of float

    Returns
    -------
    numpy.ndarray of uint32, shape ``(height, width)``
    """
    if values.dtype != np.float64:  # other dtypes clip and subtract in their own precision
        return _shade_all(values, cmap, how="linear", span=span)
    occupied = np.flatnonzero(~np.isnan(values.reshape(-1)))
    if not len(occupied):
        return np.zeros(values.shape, dtype=np.uint32)
    low, high = span
    data = np.clip(values.reshape(-1)[occupied], low, high) - np.float64(low)
    return _colormap(occupied, values.shape, data, (0.0, high - low), cmap)


def _dot(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    # values @ weights as a float32 sum in column order, the matrix product's own order: as
    # a product, (n, k) @ (k, 3) goes to BLAS, many times slower for a handful of columns
    out = values[:, 0] * weights[0]
    for column in range(1, values.shape[1]):
        out += values[:, column] * weights[column]
    return out


def _occupied(agg: np.ndarray):
    """Datashader's rule for data: non-zero unsigned counts, non-NaN floats."""
    flat = agg.reshape(-1)
    if flat.dtype.kind == "u":
        occupied = np.flatnonzero(flat)
    elif flat.dtype.kind == "f":
        occupied = np.flatnonzero(~np.isnan(flat))
    else:
        return None, None
    return occupied, flat[occupied]


def _rescale_discrete_levels(levels: int, span):
    # Datashader's: with few distinct levels the lowest starts above the bottom of the ramp
    # (a line through 2 levels -> 1.5 and 100 levels -> 1)
    m = -0.5 / 98.0
    multiple = m * levels + (1.5 - 2 * m)
    if multiple > 1:
        return (max(span[1] - multiple * (span[1] - span[0]), 0), 1)
    return span


def _colormap(occupied, shape, data, span, cmap) -> np.ndarray:
    stops = np.linspace(span[0], span[1], len(cmap))
    channels = np.array([rgb(c) for c in cmap]).T
    r, g, b = (np.nan_to_num(np.interp(data, stops, c, left=255)).astype(np.uint8)
               for c in channels)
    return _pack(occupied, shape, r, g, b, np.uint8(255))


def _pack(occupied, shape, r, g, b, a) -> np.ndarray:
    # bytes r, g, b, a viewed as one uint32, as Datashader packs them (any endianness)
    pixels = np.empty((len(occupied), 4), dtype=np.uint8)
    for channel, value in enumerate((r, g, b, a)):
        pixels[:, channel] = value
    out = np.zeros(shape[0] * shape[1], dtype=np.uint32)
    out[occupied] = pixels.view(np.uint32)[:, 0]
    return out.reshape(shape)


def _shade_all(agg: np.ndarray, cmap, **how) -> np.ndarray:
    return tf.shade(xr.DataArray(agg, dims=("y", "x")), cmap=cmap, **how).data
