"""The knee of a curve: the point farthest below the straight line joining its two ends.

Used for the elbow of the cost-against-k curve of a sweep (a falling curve) and for DBSCAN's
``eps`` at the knee of the sorted k-distances (a rising one).
"""

from __future__ import annotations

import numpy as np


def knee(y, x=None) -> int:
    """Index of the point of a curve farthest below the chord joining its first and last points.

    Parameters
    ----------
    y : array-like of shape (n,)
        The curve's values.
    x : array-like of shape (n,), optional
        Its increasing positions; default ``0, 1, ..., n - 1``.

    Returns
    -------
    int
        The index. Ties, and a curve with no point below its chord (fewer than three points,
        a straight or a concave curve), give the first.

    Notes
    -----
    For every point the perpendicular distance to the chord is the vertical gap
    ``chord - y`` times the same factor, so the knee does not depend on how either axis is
    scaled: no normalisation is needed.
    """
    y = np.asarray(y, dtype=np.float64)
    x = np.arange(len(y), dtype=np.float64) if x is None else np.asarray(x, dtype=np.float64)
    if len(y) < 3:
        return 0
    chord = y[0] + (y[-1] - y[0]) * (x - x[0]) / (x[-1] - x[0])
    return int(np.argmax(chord - y))
