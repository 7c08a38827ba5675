"""Browser downloads of the selection, written in slices so memory stays bounded.

Panel's ``FileDownload`` sends a file; the selection is written to a temporary file a slice of
rows at a time (never one string of the whole table), then handed over.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterable

import numpy as np
import pandas as pd

SLICE_ROWS = 200_000


def write_rows(frame: pd.DataFrame, rows: np.ndarray, columns: list[str], fmt: str) -> str:
    """Write ``frame.iloc[rows][columns]`` as CSV or JSON lines; return the file's path.

    Parameters
    ----------
    frame : pandas.DataFrame
    rows : ndarray of int
        Positions of the rows to write, in order.
    columns : list of str
    fmt : {"csv", "json"}
        ``json`` writes one JSON object per line.

    Returns
    -------
    str
        A temporary file; the caller's download removes nothing, the OS temp cleaner does.
    """
    return write_frames((frame.iloc[rows[start:start + SLICE_ROWS]][columns]
                         for start in range(0, max(len(rows), 1), SLICE_ROWS)), fmt)


def write_frames(frames: Iterable[pd.DataFrame], fmt: str) -> str:
    """Write ``frames``, one after another, as one CSV (a header once) or JSON lines file.

    Parameters
    ----------
    frames : iterable of pandas.DataFrame
        Slices of one table, the same columns each; at least one (it may be empty).
    fmt : {"csv", "json"}

    Returns
    -------
    str
        The temporary file's path.
    """
    if fmt not in ("csv", "json"):
        raise ValueError(f"unknown format {fmt!r}; use csv or json")
    handle = tempfile.NamedTemporaryFile("w", suffix=f".{fmt}", delete=False, newline="",
                                         encoding="utf-8")
    with handle:
        for i, part in enumerate(frames):
            if fmt == "csv":
                part.to_csv(handle, index=False, header=i == 0)
            else:
                for record in part.to_dict(orient="records"):
                    handle.write(json.dumps(record, default=_plain) + "\n")
    return handle.name


def _plain(value):
    if isinstance(value, np.generic):
        return value.item()
    if value is pd.NA or value is pd.NaT:
        return None
    return str(value)
