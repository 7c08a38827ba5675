"""Row validation: every row is accepted or rejected with a reason, never dropped.

Rules, in the order a row's reason is chosen: a reason ``sonicatlas ingest`` already gave it;
a missing ``track_id``; a feature value that is not a number; a missing (NaN) or infinite
feature; a feature too large for float32 (the clustering's type); a feature outside its valid
range (:data:`sonicatlas.contract.VALID_RANGES`, or the run's ``bounds``); a ``track_id``
already seen earlier in the catalog (the first valid occurrence is kept). Every reject's
``detail`` is the offending value as read (``nan`` or ``null`` where it is missing).
"""

from __future__ import annotations

from typing import NamedTuple

import dask
import dask.dataframe as dd
import numba
import numpy as np
import pandas as pd
import pyarrow as pa

from sonicatlas.contract import (
    DETAIL,
    FLOAT32_MAX,
    POSITION,
    REASON,
    SOURCE_FILE,
    SOURCE_LINE,
    TRACK_ID,
    VALID_RANGES,
    Range,
)
from sonicatlas.io.duplicates import ID_HASH, hash_ids, merge_repeats

DUPLICATE = "duplicate track_id"


def check_partition(frame: pd.DataFrame, features: tuple[str, ...],
                    partition_info: dict | None = None,
                    ranges: dict[str, Range] | None = None) -> pd.DataFrame:
    """Coerce features to float64 and add a ``reason`` column (missing where the row is valid).

    Parameters
    ----------
    frame : pandas.DataFrame
        One partition with ``track_id`` and the features, any numeric or text dtype; a
        ``reason`` (and ``detail``) already there, from ingest, is kept.
    features : tuple of str
        Features to check against :data:`sonicatlas.contract.VALID_RANGES`.
    partition_info : dict, optional
        Filled in by dask's ``map_partitions``; gives the partition number for ``_pos``.
    ranges : dict of str to Range, optional
        Valid ranges that replace the contract's, by feature.

    Returns
    -------
    pandas.DataFrame
        ``frame`` with float64 features, ``reason`` and ``detail`` (the offending value) as
        strings, and ``_pos`` (int64).
    """
    number = partition_info["number"] if partition_info else 0
    ranges = {**VALID_RANGES, **(ranges or {})}
    out = frame.copy(deep=False)  # new columns only: copy-on-write keeps ``frame`` intact
    reasons = np.full(len(frame), None, dtype=object)
    details = np.full(len(frame), None, dtype=object)
    open_rows = np.ones(len(frame), dtype=bool)  # rows without a reason yet
    if REASON in frame:  # set aside by ingest: its reason and detail stand
        given = frame[REASON].notna().to_numpy(dtype=bool)
        if given.any():
            reasons[given] = frame[REASON].to_numpy(dtype=object)[given]
            if DETAIL in frame:
                details[given] = frame[DETAIL].to_numpy(dtype=object, na_value=None)[given]
            open_rows &= ~given

    def describe(target: np.ndarray, reason: str, detail=None) -> None:
        if target.any():
            reasons[target] = reason
            if detail is not None:
                details[target] = [_shown(v) for v in detail[target]]

    def mark(mask: np.ndarray, reason: str, detail=None) -> None:
        # Earlier rules win: only rows without a reason yet take this one.
        target = mask & open_rows
        open_rows[target] = False
        describe(target, reason, detail)

    ids = frame[TRACK_ID]
    blank_id = ids.isna() | (ids.astype("string").str.strip() == "").fillna(True)
    mark(blank_id.to_numpy(dtype=bool), "missing track_id", ids.to_numpy(dtype=object))
    for name in features:
        raw = frame[name]
        if raw.dtype == np.float64:
            continue  # as it is: a copy per feature would cost more than the check
        if pd.api.types.is_numeric_dtype(raw.dtype):
            out[name] = raw.to_numpy(dtype=np.float64, na_value=np.nan)
            continue
        values = pd.to_numeric(raw, errors="coerce").astype("float64")
        given = raw.notna()
        if pd.api.types.is_string_dtype(raw.dtype):
            given &= (raw.astype("string").str.strip() != "").fillna(False)
        unparsable = (values.isna() & given).to_numpy(dtype=bool)
        mark(unparsable, f"unparsable {name}", raw.to_numpy(dtype=object))
        out[name] = values.to_numpy(dtype=np.float64, na_value=np.nan)
    failure = np.empty(len(frame), dtype=np.int8)
    for name in features:
        values = out[name].to_numpy()
        valid = ranges[name]
        if _failures(values, valid.low, valid.high, valid.low_inclusive,
                     valid.high_inclusive, open_rows, failure):
            for code, reason in ((_MISSING, f"missing {name}"),
                                 (_INFINITE, f"infinite {name}"),
                                 (_TOO_LARGE, f"{name} too large for float32"),
                                 (_OUTSIDE, f"{name} outside {valid.describe()}")):
                describe(failure == code, reason, values)
    out[TRACK_ID] = ids.astype("string")
    out[REASON], out[DETAIL] = _strings(reasons, open_rows), _strings(details, open_rows)
    out[POSITION] = (np.int64(number) << 32) + np.arange(len(frame), dtype=np.int64)
    return out


_MISSING, _INFINITE, _TOO_LARGE, _OUTSIDE = 1, 2, 3, 4


def _shown(value) -> str:
    """A rejected value for ``detail``: text quoted, numbers in full, missing as ``null``."""
    if value is None or value is pd.NA or value is pd.NaT:
        return "null"
    if isinstance(value, str):
        return repr(value)
    text = repr(float(value)) if isinstance(value, float | np.floating) else str(value)
    return text.removesuffix(".0")


@numba.njit(cache=True, nogil=True)
def _failures(values, low, high, low_inclusive, high_inclusive, open_rows, failure
              ):  # pragma: no cover - numba
    """The first rule each row without a reason yet fails on ``values``, in one pass.

    ``failure`` gets 0 (passes), missing, infinite, too large for float32 or outside the range
    (the rules' order); a failing row is closed in ``open_rows``. Returns how many failed.
    One read of the column, where numpy would build five masks per feature.
    """
    failed = 0
    for r in range(values.shape[0]):
        code = 0
        if open_rows[r]:
            v = values[r]
            if np.isnan(v):
                code = _MISSING
            elif np.isinf(v):
                code = _INFINITE
            elif abs(v) > FLOAT32_MAX:
                code = _TOO_LARGE
            elif (v < low or (v == low and not low_inclusive)
                  or v > high or (v == high and not high_inclusive)):
                code = _OUTSIDE
            if code:
                open_rows[r] = False
                failed += 1
        failure[r] = code
    return failed


def _strings(values: np.ndarray, unset: np.ndarray) -> pd.api.extensions.ExtensionArray:
    if unset.all():  # the usual case: a null array is made, not parsed from Python objects
        return pd.array(pa.nulls(len(values), pa.large_string()), dtype="string")
    return pd.array(values, dtype="string")


def check_rows(frame: dd.DataFrame, features: tuple[str, ...],
               ranges: dict[str, Range] | None = None) -> dd.DataFrame:
    """Lazy :func:`check_partition` over every partition."""
    return frame.map_partitions(check_partition, features, ranges=ranges)


# -- duplicates -------------------------------------------------------------------------------
def _accepted_part(frame: pd.DataFrame, features: tuple[str, ...], hashed: bool = False
                   ) -> pd.DataFrame:
    valid = frame[REASON].isna().to_numpy()
    kept = frame if valid.all() else frame[valid]  # no copy of a partition with no rejects
    out = kept.drop(columns=[REASON, DETAIL])
    if hashed:  # 8 bytes a row in place of the id's ~30, where the ids are read again
        out = out.assign(**{TRACK_ID: hash_ids(out[TRACK_ID])}).rename(
            columns={TRACK_ID: ID_HASH})
    if SOURCE_FILE in out:
        # Held for the whole run, for the duplicates' rejects only: the file (one per
        # partition) as a category and the line as int32, not a path and an int64 per row.
        out = out.assign(**{SOURCE_FILE: out[SOURCE_FILE].astype("category"),
                            SOURCE_LINE: out[SOURCE_LINE].astype(np.int32)})
    if features:
        # One 2-D float32 block, not a block per column: the scaling, the scores and the
        # per-artist sums then read ``frame[features]`` as a view, not a 40 MB copy each.
        names = list(features)
        block = pd.DataFrame(out[names].to_numpy(dtype=np.float32), columns=names,
                             index=out.index, copy=False)
        out = pd.concat([out.drop(columns=names), block], axis=1)[list(out.columns)]
    return out


def split(checked: dd.DataFrame, features: tuple[str, ...] = (), hashed: bool = False
          ) -> tuple[dd.DataFrame, dd.DataFrame]:
    """Lazy (accepted, rejected) rows of a checked frame; together they are every row.

    The accepted rows lose ``reason`` and ``detail`` (always missing there) and hold
    ``features`` as float32: they are what stays in memory for the whole run, and the
    clustering reads the features in float32 anyway. ``hashed``: they hold ``_id_hash``
    (:func:`sonicatlas.io.duplicates.hash_ids`) in place of ``track_id``. Rejected rows keep
    the float64 values.
    """
    accepted = checked.map_partitions(_accepted_part, tuple(features), hashed)
    return accepted, checked[~checked[REASON].isna()]


class Validated(NamedTuple):
    """What :func:`validate` holds: the rows to cluster, the rejects, the merged listings."""

    accepted: dd.DataFrame
    rejects: dd.DataFrame
    #: listings of a track already accepted with the same features, folded into it (their
    #: genres joined): rows read = accepted + rejected + merged
    merged: int


def validate(frame: dd.DataFrame, features: tuple[str, ...],
             ranges: dict[str, Range] | None = None, ids: dd.DataFrame | None = None
             ) -> Validated:
    """Check every row, in one read: the persisted accepted and rejected rows.

    Both are persisted from the same read (the checked frame itself is never held, so a
    catalog larger than memory spills once, not twice). A track listed several times with
    the same features (one listing per playlist, say) is then kept once with all its genres;
    repeats whose features differ go to the rejects with both values, as read, in the detail
    (:func:`sonicatlas.io.duplicates.merge_repeats`). ``ranges`` replaces the contract's
    valid ranges by feature (the run's ``bounds``).

    ``ids``: ``track_id`` of every row as read again, partitioned as ``frame``
    (:func:`sonicatlas.io.catalog.read_columns`). The accepted rows then hold no ids: only the
    candidate repeats' ids are read from it, and the tables read the ids again when written.
    """
    checked = check_rows(frame, features, ranges)
    accepted, rejects = dask.persist(*split(checked, features, hashed=ids is not None))
    return Validated(*merge_repeats(accepted, rejects, features, as_read=checked, ids=ids))
