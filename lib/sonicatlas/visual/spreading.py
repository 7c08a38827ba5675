"""Sparse maps' points grown by a few pixels: Datashader's ``tf.dynspread``, in cached kernels.

Datashader spreads an image with a kernel it compiles in every process, over compositing
operators whose module compiles twenty numba ufuncs when first imported; a map sparse enough
to be spread (a small catalog) paid that on every run. These kernels do the same arithmetic
(Datashader's "over" on its packed RGBA) and are compiled once, cached on disk.
"""

from __future__ import annotations

import numba
import numpy as np


def dynspread(rgba: np.ndarray, threshold: float = 0.5, max_px: int = 3) -> np.ndarray:
    """``tf.dynspread(image, threshold, max_px)`` of packed RGBA pixels (circles, "over").

    Parameters
    ----------
    rgba : numpy.ndarray of uint32, shape ``(height, width)``
        Pixels as ``tf.shade`` packs them; alpha 0 is empty.
    threshold : float
        Points are grown by one more pixel while the share of non-empty pixels with another
        non-empty pixel within twice that distance stays at most ``threshold``.
    max_px : int
        The most pixels a point grows by.

    Returns
    -------
    numpy.ndarray of uint32
        ``rgba`` itself when no spreading is needed, else a new array.
    """
    grow = 0
    for px in range(1, max_px + 1):
        if _density(rgba, 2 * px) > threshold:
            break
        grow = px
    if grow == 0:
        return rgba
    x = np.arange(-grow, grow + 1, dtype="i4")
    mask = np.sqrt(x**2 + x[:, None] ** 2) <= grow + 0.5
    out = np.zeros((rgba.shape[0] + 2 * grow, rgba.shape[1] + 2 * grow), dtype=np.uint32)
    _spread_over(rgba, mask, out)
    return out[grow:-grow, grow:-grow].copy()


@numba.njit(cache=True, nogil=True)
def _density(arr, px):  # pragma: no cover - numba
    """Share of non-empty pixels with another non-empty one within ``px`` (a square)."""
    rows, cols = arr.shape
    count = with_neighbours = 0
    for y in range(rows):
        for x in range(cols):
            if (arr[y, x] >> 24) & 255:
                count += 1
                neighbours = 0
                for i in range(max(0, y - px), min(y + px + 1, rows)):
                    for j in range(max(0, x - px), min(x + px + 1, cols)):
                        if (arr[i, j] >> 24) & 255:
                            neighbours += 1
                if neighbours > 1:  # itself is one
                    with_neighbours += 1
    return with_neighbours / count if count else np.inf


@numba.njit(cache=True, nogil=True)
def _spread_over(arr, mask, out):  # pragma: no cover - numba
    """Each non-empty pixel drawn "over" ``out`` at every offset of ``mask``, in row order."""
    rows, cols = arr.shape
    width = mask.shape[0]
    for y in range(rows):
        for x in range(cols):
            source = arr[y, x]
            if (source >> 24) & 255:
                for i in range(width):
                    for j in range(width):
                        if mask[i, j]:
                            below = out[i + y, j + x]
                            out[i + y, j + x] = source if below == 0 else _over(source, below)


@numba.njit(cache=True, nogil=True)
def _over(source, below):  # pragma: no cover - numba
    """Porter-Duff "over" of packed RGBA, in Datashader's float64 steps and truncation."""
    sr, sg, sb, sa = _scaled(source)
    dr, dg, db, da = _scaled(below)
    factor = 1 - sa
    a = sa + da * factor
    if a == 0:
        return np.uint32(0)
    r = (sr * sa + dr * da * factor) / a
    g = (sg * sa + dg * da * factor) / a
    b = (sb * sa + db * da * factor) / a
    return np.uint32((_byte(a) << 24) | (_byte(b) << 16) | (_byte(g) << 8) | _byte(r))


@numba.njit(cache=True, nogil=True)
def _scaled(x):  # pragma: no cover - numba
    return (np.float64((x & 255) / 255), np.float64(((x >> 8) & 255) / 255),
            np.float64(((x >> 16) & 255) / 255), np.float64(((x >> 24) & 255) / 255))


@numba.njit(cache=True, nogil=True)
def _byte(value):  # pragma: no cover - numba
    return min(255, np.uint32(value * 255))
