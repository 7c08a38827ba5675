"""Row validation of a listening log: every row is accepted or rejected with a reason.

Rules, in the order a row's reason is chosen (the first that applies wins): a missing
``user_id``; a missing ``track_id``; a missing, unparsable, future or too early ``ts``; a
missing or non-positive ``ms_played`` / ``play_count``; a ``track_id`` not in the catalog.

The catalog look-up (see :func:`check_listens`) is the only rule that needs more than the row
itself.
"""

from __future__ import annotations

import dask.dataframe as dd
import numpy as np
import pandas as pd

from sonicatlas.contract import DETAIL, POSITION, REASON, TRACK_ID, TRACK_ROW, TS, USER_ID
from sonicatlas.listeners.lookup import SharedLookup, TrackLookup, track_lookup

#: Weight columns: with ``play_count`` a row is that many plays, with ``ms_played`` one play.
WEIGHTS = ("ms_played", "play_count")
#: Plays before this are taken for broken clocks, not history.
EARLIEST = pd.Timestamp("2000-01-01", tz="UTC")
UNKNOWN = "unknown track_id"
#: One resolution for every partition's ``ts``; microseconds span years 1-9999 (ns: 1677-2262).
TS_DTYPE = "datetime64[us, UTC]"


def utc_timestamp(value) -> pd.Timestamp:
    """``value`` as a UTC timestamp; a naive one is taken to be UTC already."""
    stamp = pd.Timestamp(value)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def to_utc(raw: pd.Series) -> pd.Series:
    """Parse ``raw`` (datetimes or ISO 8601 text) into ``datetime64[us, UTC]``; NaT if unparsable.

    Naive datetimes are taken to be UTC; aware ones are converted.
    """
    if isinstance(raw.dtype, pd.DatetimeTZDtype):
        parsed = raw.dt.tz_convert("UTC")
    elif pd.api.types.is_datetime64_dtype(raw.dtype):
        parsed = raw.dt.tz_localize("UTC")
    else:
        parsed = pd.to_datetime(raw, errors="coerce", utc=True, format="ISO8601")
    return parsed.astype(TS_DTYPE)


def _describe(values: np.ndarray) -> list[str]:
    return [v.isoformat() if isinstance(v, pd.Timestamp)
            else repr(v) if isinstance(v, str) else f"{v:g}" for v in values]


def _blank(values: pd.Series) -> np.ndarray:
    text = values.astype("string").str.strip()
    return (values.isna() | (text == "").fillna(True)).to_numpy(dtype=bool)


def check_listen_partition(frame: pd.DataFrame, now: pd.Timestamp,
                           earliest: pd.Timestamp = EARLIEST,
                           partition_info: dict | None = None) -> pd.DataFrame:
    """Coerce ``ts`` to UTC and add ``reason``/``detail`` for every row-local rule.

    Parameters
    ----------
    frame : pandas.DataFrame
        One partition with ``user_id``, ``track_id``, ``ts`` and ``ms_played`` and/or
        ``play_count``.
    now : pandas.Timestamp
        Plays after this (UTC) are rejected as in the future.
    earliest : pandas.Timestamp, optional
        Plays before this (UTC) are rejected; default 2000-01-01.
    partition_info : dict, optional
        Filled in by dask's ``map_partitions``; gives the partition number for ``_pos``.

    Returns
    -------
    pandas.DataFrame
        ``frame`` with ``ts`` as ``datetime64[us, UTC]``, ``user_id``/``track_id`` as strings,
        weight columns as float64, ``reason`` and ``detail`` (strings, missing where valid) and
        ``_pos`` (int64: partition number in the high 32 bits, row in the low 32).
    """
    weights = [name for name in WEIGHTS if name in frame.columns]
    if not weights:
        raise ValueError(f"a listening log needs one of {WEIGHTS}; got {list(frame.columns)}")
    number = partition_info["number"] if partition_info else 0
    out = frame.copy()
    reasons = np.full(len(frame), None, dtype=object)
    details = np.full(len(frame), None, dtype=object)
    open_rows = np.ones(len(frame), dtype=bool)  # rows without a reason yet

    def mark(mask: np.ndarray, reason: str, detail=None) -> None:
        # Earlier rules win: only rows without a reason yet take this one. Only those rows'
        # values become objects (a Timestamp per row of a partition costs ~4 us).
        target = mask & open_rows
        if target.any():
            open_rows[target] = False
            reasons[target] = reason
            if detail is not None:
                details[target] = _describe(np.asarray(detail[target], dtype=object))

    mark(_blank(frame[USER_ID]), f"missing {USER_ID}")
    mark(_blank(frame[TRACK_ID]), f"missing {TRACK_ID}")

    raw = frame[TS]
    ts = to_utc(raw)
    missing = ts.isna().to_numpy(dtype=bool)
    given = ~_blank(raw) if not pd.api.types.is_datetime64_any_dtype(raw.dtype) \
        else raw.notna().to_numpy(dtype=bool)
    mark(missing & ~given, f"missing {TS}")
    mark(missing & given, f"unparsable {TS}", raw.array)
    stamps = ts.array
    mark((ts > now).to_numpy(dtype=bool, na_value=False), f"{TS} in the future", stamps)
    mark((ts < earliest).to_numpy(dtype=bool, na_value=False),
         f"{TS} before {earliest.date().isoformat()}", stamps)

    for name in weights:
        values = pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype=np.float64,
                                                                       na_value=np.nan)
        mark(np.isnan(values), f"missing {name}")
        mark(values <= 0, f"non-positive {name}", values)
        out[name] = values

    out[USER_ID] = frame[USER_ID].astype("string")
    out[TRACK_ID] = frame[TRACK_ID].astype("string")
    out[TS] = ts
    out[REASON] = pd.array(reasons, dtype="string")
    out[DETAIL] = pd.array(details, dtype="string")
    out[POSITION] = (np.int64(number) << 32) + np.arange(len(frame), dtype=np.int64)
    return out


def check_and_resolve(frame: pd.DataFrame, lookup: TrackLookup, now: pd.Timestamp,
                      earliest: pd.Timestamp = EARLIEST, resolved: bool = False,
                      partition_info: dict | None = None) -> pd.DataFrame:
    """:func:`check_listen_partition`, then ``unknown track_id`` for ids not in ``lookup``.

    With ``resolved``, the output also has ``_track``: each accepted listen's row in
    ``lookup`` (-1 for rejected rows), so that the features need not look it up again.
    """
    out = check_listen_partition(frame, now, earliest, partition_info)
    rows = lookup.find(out[TRACK_ID])
    unknown = (rows < 0) & out[REASON].isna().to_numpy()
    if unknown.any():
        out.loc[unknown, REASON] = UNKNOWN
        out.loc[unknown, DETAIL] = _describe(out[TRACK_ID].to_numpy(dtype=object)[unknown])
    if resolved:
        out[TRACK_ROW] = np.where(out[REASON].isna().to_numpy(), rows, -1)
    return out


def check_listens(listens: dd.DataFrame, tracks, *, now=None,
                  earliest=EARLIEST) -> dd.DataFrame:
    """Lazy: every row of ``listens`` with a ``reason`` (missing where the row is valid).

    Every partition is checked where it is read, with the catalog's ids at hand: ``tracks``
    becomes a :class:`~sonicatlas.listeners.lookup.TrackLookup` (hashes of the ids), made once
    and shared by every task, so the log is never shuffled; rows whose id it lacks are
    ``unknown track_id``, the id as ``detail``.

    Parameters
    ----------
    listens : dask.dataframe.DataFrame
        ``user_id``, ``track_id``, ``ts`` and ``ms_played`` and/or ``play_count``.
    tracks : SharedLookup, dask or pandas Series or DataFrame (with ``track_id``), or list-like
        The catalog, or its ids; repeats and missing values are ignored. Given a
        :class:`~sonicatlas.listeners.lookup.SharedLookup` with features, the output also holds
        ``_track``, each accepted listen's row in it, for
        :func:`~sonicatlas.listeners.users.user_features` with the same lookup.
    now : timestamp-like, optional
        Plays after this are ``ts in the future``; default the wall-clock time of this call.
        Naive values are taken as UTC.
    earliest : timestamp-like, optional
        Plays before this are ``ts before ...``; default 2000-01-01 UTC.

    Returns
    -------
    dask.dataframe.DataFrame
        The rows of :func:`check_listen_partition`, in their partitions and order.
    """
    now = utc_timestamp(pd.Timestamp.now(tz="UTC") if now is None else now)
    earliest = utc_timestamp(earliest)
    lookup = tracks if isinstance(tracks, SharedLookup) else track_lookup(tracks)
    resolved = bool(lookup.feature_names)
    meta = check_and_resolve(listens._meta, lookup.empty(), now, earliest, resolved)
    return listens.map_partitions(check_and_resolve, lookup.data, now, earliest, resolved,
                                  meta=meta)
