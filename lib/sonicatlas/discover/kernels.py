"""The compiled scoring of every track against one query, reading the features column by column.

One pass over the rows with no temporaries: numpy's version allocated a float64 array per
feature and block, and in a dask worker (where ``MALLOC_TRIM_THRESHOLD_`` is small) every such
allocation went back to the kernel and faulted its pages in again, so the same scoring took
about four times as long there as in one process. The arithmetic is numpy's, operation for
operation in float64 (numba contracts nothing into fused multiply-adds without fastmath), so a
row's score is the same bit for bit wherever it is computed.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def _cosine(columns, q, qq, out):
    for i in range(out.shape[0]):
        x = np.float64(columns[0][i])
        dot = x * q[0]
        xx = x * x
        for j in range(1, len(q)):
            x = np.float64(columns[j][i])
            dot += x * q[j]
            xx += x * x
        norm = np.sqrt(xx * qq)
        out[i] = dot / norm if norm > 0 else 0.0


@numba.njit(cache=True, nogil=True)
def _euclidean(columns, q, out):
    for i in range(out.shape[0]):
        d = np.float64(columns[0][i]) - q[0]
        total = d * d
        for j in range(1, len(q)):
            d = np.float64(columns[j][i]) - q[j]
            total += d * d
        out[i] = np.sqrt(total)


def column_scores(columns: tuple[np.ndarray, ...], query: np.ndarray, cosine: bool
                  ) -> np.ndarray:
    """Cosine similarity (0 for a zero row) or euclidean distance of each row to ``query``.

    Parameters
    ----------
    columns : tuple of numpy.ndarray
        One contiguous 1-d array per feature, all of one dtype and length.
    query : numpy.ndarray
        (features,), float64.
    cosine : bool
        Cosine if true, else euclidean.

    Returns
    -------
    numpy.ndarray
        float64, one per row.
    """
    q = np.ascontiguousarray(query, dtype=np.float64)
    # read-only views all round: one compiled variant per dtype, whatever the arrays came from
    columns = tuple(_read_only(c) for c in columns)
    out = np.empty(len(columns[0]) if columns else 0, dtype=np.float64)
    if len(out):
        if cosine:
            _cosine(columns, q, float(q @ q), out)
        else:
            _euclidean(columns, q, out)
    return out


def _read_only(column: np.ndarray) -> np.ndarray:
    view = np.ascontiguousarray(column).view()
    view.setflags(write=False)
    return view
