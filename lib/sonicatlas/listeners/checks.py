"""Row validation of a listening log: every row is accepted or rejected with a reason.

Rules, in the order a row's reason is chosen (the first that applies wins): a missing
``user_id``; a missing ``track_id``; a missing, unparsable, future or too early ``ts``; a
missing or non-positive ``ms_played`` / ``play_count``; a ``track_id`` not in the catalog.

The catalog look-up is a left merge with an indicator (see :func:`check_listens`), the only
rule that needs more than the row itself.
"""

from __future__ import annotations

import dask.dataframe as dd
import numpy as np
import pandas as pd

from sonicatlas.contract import DETAIL, POSITION, REASON, TRACK_ID, TS, USER_ID

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

    def mark(mask: np.ndarray, reason: str, detail: np.ndarray | None = None) -> None:
        # Earlier rules win: only rows without a reason yet take this one.
        target = mask & open_rows
        if target.any():
            open_rows[target] = False
            reasons[target] = reason
            if detail is not None:
                details[target] = _describe(detail[target])

    mark(_blank(frame[USER_ID]), f"missing {USER_ID}")
    mark(_blank(frame[TRACK_ID]), f"missing {TRACK_ID}")

    raw = frame[TS]
    ts = to_utc(raw)
    missing = ts.isna().to_numpy(dtype=bool)
    given = ~_blank(raw) if not pd.api.types.is_datetime64_any_dtype(raw.dtype) \
        else raw.notna().to_numpy(dtype=bool)
    mark(missing & ~given, f"missing {TS}")
    mark(missing & given, f"unparsable {TS}", raw.to_numpy(dtype=object))
    stamps = ts.to_numpy(dtype=object)
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


def _catalog_ids(track_ids) -> dd.DataFrame:
    """Distinct, non-missing catalog ids as a one-column dask frame."""
    if isinstance(track_ids, dd.DataFrame):
        ids = track_ids[TRACK_ID]
    elif isinstance(track_ids, dd.Series):
        ids = track_ids
    else:
        if isinstance(track_ids, pd.DataFrame):
            track_ids = track_ids[TRACK_ID]
        # A client-side id list becomes one partition, which dask joins by broadcast.
        ids = dd.from_pandas(pd.Series(list(track_ids) if isinstance(track_ids, set)
                                       else track_ids, dtype="string"), npartitions=1)
    ids = ids.astype("string").rename(TRACK_ID).dropna()
    # Distinct ids keep the left merge one row out per row in, even for a catalog with repeats.
    return ids.drop_duplicates().to_frame()


def _mark_unknown(frame: pd.DataFrame) -> pd.DataFrame:
    unknown = (frame["_merge"] == "left_only").to_numpy() & frame[REASON].isna().to_numpy()
    out = frame.drop(columns="_merge")
    if unknown.any():
        out.loc[unknown, REASON] = UNKNOWN
        out.loc[unknown, DETAIL] = _describe(out[TRACK_ID].to_numpy(dtype=object)[unknown])
    return out


def check_listens(listens: dd.DataFrame, track_ids, *, now=None,
                  earliest=EARLIEST) -> dd.DataFrame:
    """Lazy: every row of ``listens`` with a ``reason`` (missing where the row is valid).

    A ``track_id`` absent from the catalog is found by a left merge of the log with the distinct
    catalog ids (``indicator=True``); rows with no partner are ``unknown track_id``. Dask plans
    the merge: a hash join (both sides shuffled on ``track_id``) for a large catalog, or a
    broadcast of the ids to every log partition when the catalog has few partitions
    (``n_catalog < log2(n_log) / 2``, or one partition, e.g. ids given as a pandas object). A
    ``set`` look-up per partition would need the whole catalog in every task, which a 10M-id
    catalog (about 1 GB of Python strings) does not allow; the join stays distributed.

    Parameters
    ----------
    listens : dask.dataframe.DataFrame
        ``user_id``, ``track_id``, ``ts`` and ``ms_played`` and/or ``play_count``.
    track_ids : dask or pandas Series or DataFrame (with ``track_id``), or a list-like
        The catalog's ids; repeats and missing values are ignored.
    now : timestamp-like, optional
        Plays after this are ``ts in the future``; default the wall-clock time of this call.
        Naive values are taken as UTC.
    earliest : timestamp-like, optional
        Plays before this are ``ts before ...``; default 2000-01-01 UTC.

    Returns
    -------
    dask.dataframe.DataFrame
        The rows of :func:`check_listen_partition`, in a new partitioning (the merge shuffles
        unless it broadcasts): ``_pos`` gives each row's original place.
    """
    now = utc_timestamp(pd.Timestamp.now(tz="UTC") if now is None else now)
    earliest = utc_timestamp(earliest)
    meta = check_listen_partition(listens._meta, now, earliest)
    checked = listens.map_partitions(check_listen_partition, now, earliest, meta=meta)
    merged = checked.merge(_catalog_ids(track_ids), on=TRACK_ID, how="left", indicator=True)
    return merged.map_partitions(_mark_unknown, meta=meta)
