"""Row validation: every row is accepted or rejected with a reason, never dropped.

Rules, in the order a row's reason is chosen: a missing ``track_id``; a feature value that is
not a number; a missing (NaN) or infinite feature; a feature outside its valid range; a
``track_id`` already seen earlier in the catalog (the first valid occurrence is kept).
"""

from __future__ import annotations

import dask
import dask.dataframe as dd
import numba
import numpy as np
import pandas as pd
import pyarrow as pa

from sonicatlas.contract import DETAIL, POSITION, REASON, TRACK_ID, VALID_RANGES

DUPLICATE = "duplicate track_id"


def check_partition(frame: pd.DataFrame, features: tuple[str, ...],
                    partition_info: dict | None = None) -> pd.DataFrame:
    """Coerce features to float64 and add a ``reason`` column (missing where the row is valid).

    Parameters
    ----------
    frame : pandas.DataFrame
        One partition with ``track_id`` and the features, any numeric or text dtype.
    features : tuple of str
        Features to check against :data:`sonicatlas.contract.VALID_RANGES`.
    partition_info : dict, optional
        Filled in by dask's ``map_partitions``; gives the partition number for ``_pos``.

    Returns
    -------
    pandas.DataFrame
        ``frame`` with float64 features, ``reason`` and ``detail`` (the offending value) as
        strings, and ``_pos`` (int64).
    """
    number = partition_info["number"] if partition_info else 0
    out = frame.copy(deep=False)  # new columns only: copy-on-write keeps ``frame`` intact
    reasons = np.full(len(frame), None, dtype=object)
    details = np.full(len(frame), None, dtype=object)
    open_rows = np.ones(len(frame), dtype=bool)  # rows without a reason yet

    def describe(target: np.ndarray, reason: str, detail=None) -> None:
        if target.any():
            reasons[target] = reason
            if detail is not None:
                details[target] = [repr(v) if isinstance(v, str) else f"{v:g}"
                                   for v in detail[target]]

    def mark(mask: np.ndarray, reason: str, detail=None) -> None:
        # Earlier rules win: only rows without a reason yet take this one.
        target = mask & open_rows
        open_rows[target] = False
        describe(target, reason, detail)

    ids = frame[TRACK_ID]
    blank_id = ids.isna() | (ids.astype("string").str.strip() == "").fillna(True)
    mark(blank_id.to_numpy(dtype=bool), "missing track_id")
    for name in features:
        raw = frame[name]
        if raw.dtype == np.float64:
            continue  # as it is: a copy per feature took a quarter of the check
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
        valid = VALID_RANGES[name]
        if _failures(values, valid.low, valid.high, valid.low_inclusive,
                     valid.high_inclusive, open_rows, failure):
            for code, reason, detail in ((_MISSING, f"missing {name}", None),
                                         (_INFINITE, f"infinite {name}", values),
                                         (_OUTSIDE, f"{name} outside {valid.describe()}", values)):
                describe(failure == code, reason, detail)
    out[TRACK_ID] = ids.astype("string")
    out[REASON], out[DETAIL] = _strings(reasons, open_rows), _strings(details, open_rows)
    out[POSITION] = (np.int64(number) << 32) + np.arange(len(frame), dtype=np.int64)
    return out


_MISSING, _INFINITE, _OUTSIDE = 1, 2, 3


@numba.njit(cache=True, nogil=True)
def _failures(values, low, high, low_inclusive, high_inclusive, open_rows, failure
              ):  # pragma: no cover - numba
    """The first rule each row without a reason yet fails on ``values``, in one pass.

    ``failure`` gets 0 (passes), missing, infinite or outside the range (the rules' order);
    a failing row is closed in ``open_rows``. Returns how many failed. Five numpy masks per
    feature took ~6 ms per 1M rows each, ten features most of a partition's check.
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
            elif (v < low or (v == low and not low_inclusive)
                  or v > high or (v == high and not high_inclusive)):
                code = _OUTSIDE
            if code:
                open_rows[r] = False
                failed += 1
        failure[r] = code
    return failed


def _strings(values: np.ndarray, unset: np.ndarray) -> pd.api.extensions.ExtensionArray:
    if unset.all():  # the usual case, ~60x faster than from a column of None
        return pd.array(pa.nulls(len(values), pa.large_string()), dtype="string")
    return pd.array(values, dtype="string")


def check_rows(frame: dd.DataFrame, features: tuple[str, ...]) -> dd.DataFrame:
    """Lazy :func:`check_partition` over every partition."""
    return frame.map_partitions(check_partition, features)


# -- duplicates -------------------------------------------------------------------------------
# A shuffle of the id strings costs ~11 s at 10M rows on 2 cores. Instead each partition hashes
# its valid ids into buckets; a bucket task finds hashes seen more than once; only those few
# candidate rows have their real ids compared, so a hash collision never rejects a row.

@numba.njit(cache=True, nogil=True)
def _fnv1a(offsets: np.ndarray, data: np.ndarray) -> np.ndarray:  # pragma: no cover - numba
    out = np.empty(len(offsets) - 1, dtype=np.uint64)
    for i in range(len(out)):
        h = np.uint64(14695981039346656037)
        for j in range(offsets[i], offsets[i + 1]):
            h = (h ^ np.uint64(data[j])) * np.uint64(1099511628211)
        out[i] = h
    return out


def hash_ids(ids: pd.Series) -> np.ndarray:
    """64-bit FNV-1a of each (non-null) string, from Arrow's buffers: ~100x pandas' hashing."""
    array = pa.array(ids.array)
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if not pa.types.is_large_string(array.type):  # 32-bit offsets are read as they are
        array = array.cast(pa.string())
    _, offsets, data = array.buffers()
    width = np.int64 if pa.types.is_large_string(array.type) else np.int32
    offsets = np.frombuffer(offsets, dtype=width)[array.offset:array.offset + len(array) + 1]
    data = np.frombuffer(data, dtype=np.uint8) if data is not None else np.empty(0, np.uint8)
    return _fnv1a(offsets, data)


def _hash_buckets(frame: pd.DataFrame, n_buckets: int) -> list[tuple[np.ndarray, np.ndarray]]:
    valid = frame[[TRACK_ID, POSITION]]
    if REASON in frame:  # a checked frame; accepted rows have no reason column
        valid = valid[frame[REASON].isna()]
    hashes, positions, bounds = _by_bucket(hash_ids(valid[TRACK_ID]),
                                           valid[POSITION].to_numpy(), n_buckets)
    return [(hashes[bounds[b]:bounds[b + 1]], positions[bounds[b]:bounds[b + 1]])
            for b in range(n_buckets)]


@numba.njit(cache=True, nogil=True)
def _by_bucket(hashes, positions, n_buckets):  # pragma: no cover - numba
    """(hash, position) pairs ordered by bucket ``hash % n_buckets``, in their order within
    a bucket (a counting sort), and where each bucket starts. A stable argsort of the
    buckets, then gathers, took twice as long."""
    starts = np.zeros(n_buckets + 1, dtype=np.int64)
    for h in hashes:
        starts[np.int64(h % np.uint64(n_buckets)) + 1] += 1
    starts = np.cumsum(starts)
    fill = starts[:-1].copy()
    out_hashes = np.empty_like(hashes)
    out_positions = np.empty_like(positions)
    for i in range(len(hashes)):
        b = np.int64(hashes[i] % np.uint64(n_buckets))
        out_hashes[fill[b]], out_positions[fill[b]] = hashes[i], positions[i]
        fill[b] += 1
    return out_hashes, out_positions, starts


def _repeated_hashes(*pieces: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    hashes = np.concatenate([h for h, _ in pieces])
    positions = np.concatenate([p for _, p in pieces])
    return positions[_repeated(hashes)]


@numba.njit(cache=True, nogil=True)
def _repeated(hashes):  # pragma: no cover - numba
    """Whether each hash occurs more than once: an open-addressing table at most half full.
    Sorting the hashes for the same answer took ~3x as long."""
    size = 16
    while size < 2 * len(hashes):
        size <<= 1
    mask = np.uint64(size - 1)
    keys = np.zeros(size, dtype=np.uint64)
    seen = np.zeros(size, dtype=np.uint8)  # 0 empty, 1 once, 2 more than once
    slots = np.empty(len(hashes), dtype=np.int64)
    for i in range(len(hashes)):
        h = hashes[i]
        slot = (h ^ (h >> np.uint64(29))) & mask  # fold the high bits into the low ones
        while seen[slot] != 0 and keys[slot] != h:
            slot = (slot + np.uint64(1)) & mask
        keys[slot] = h
        seen[slot] = min(seen[slot] + 1, 2)
        slots[i] = slot
    out = np.empty(len(hashes), dtype=np.bool_)
    for i in range(len(hashes)):
        out[i] = seen[slots[i]] == 2
    return out


def _ids_at(frame: pd.DataFrame, positions: np.ndarray) -> pd.DataFrame:
    rows = frame[frame[POSITION].isin(positions)]
    return rows[[TRACK_ID, POSITION]]


def find_duplicates(checked: dd.DataFrame, n_buckets: int | None = None) -> np.ndarray:
    """Positions of valid rows whose ``track_id`` already occurred at a lower position.

    Parameters
    ----------
    checked : dask.dataframe.DataFrame
        Output of :func:`check_rows` or the accepted rows of :func:`split`, best persisted
        first (it is read twice).
    n_buckets : int, optional
        Hash buckets; default one per partition, at least 4.

    Returns
    -------
    numpy.ndarray of int64
        Sorted ``_pos`` values to reject; its size is the number of duplicate rows.
    """
    parts = checked.to_delayed()
    n_buckets = n_buckets or max(4, len(parts))
    split = [dask.delayed(_hash_buckets, nout=n_buckets)(p, n_buckets) for p in parts]
    per_bucket = [dask.delayed(_repeated_hashes)(*(s[b] for s in split))
                  for b in range(n_buckets)]
    candidates = np.concatenate(dask.compute(*per_bucket))
    if len(candidates) == 0:
        return np.empty(0, dtype=np.int64)
    # Few rows: compare the real ids of the candidates on the client.
    owners = candidates >> 32
    lookups = [dask.delayed(_ids_at)(part, candidates[owners == i])
               for i, part in enumerate(parts) if (owners == i).any()]
    rows = pd.concat(dask.compute(*lookups)).sort_values(POSITION)
    return np.sort(rows.loc[rows[TRACK_ID].duplicated(), POSITION].to_numpy(dtype=np.int64))


def _accepted_part(frame: pd.DataFrame, features: tuple[str, ...]) -> pd.DataFrame:
    valid = frame[REASON].isna().to_numpy()
    kept = frame if valid.all() else frame[valid]  # no copy of a partition with no rejects
    out = kept.drop(columns=[REASON, DETAIL])
    if features:
        # One 2-D float32 block, not a block per column: the scaling, the scores and the
        # per-artist sums then read ``frame[features]`` as a view, not a 40 MB copy each.
        names = list(features)
        block = pd.DataFrame(out[names].to_numpy(dtype=np.float32), columns=names,
                             index=out.index, copy=False)
        out = pd.concat([out.drop(columns=names), block], axis=1)[list(out.columns)]
    return out


def split(checked: dd.DataFrame, features: tuple[str, ...] = ()
          ) -> tuple[dd.DataFrame, dd.DataFrame]:
    """Lazy (accepted, rejected) rows of a checked frame; together they are every row.

    The accepted rows lose ``reason`` and ``detail`` (always missing there) and hold
    ``features`` as float32: they are what stays in memory for the whole run, and the
    clustering reads the features in float32 anyway. Rejected rows keep the float64 values.
    """
    accepted = checked.map_partitions(_accepted_part, tuple(features))
    return accepted, checked[~checked[REASON].isna()]


def _without(frame: pd.DataFrame, positions: np.ndarray) -> pd.DataFrame:
    hit = frame[POSITION].isin(positions).to_numpy()
    return frame[~hit] if hit.any() else frame


def _with_duplicates(rejected: pd.DataFrame, accepted: pd.DataFrame, positions: np.ndarray
                     ) -> pd.DataFrame:
    moved = accepted[accepted[POSITION].isin(positions).to_numpy()]
    if moved.empty:
        return rejected
    moved = moved.assign(**{REASON: DUPLICATE, DETAIL: pd.NA}).astype(rejected.dtypes.to_dict())
    return pd.concat([rejected, moved[rejected.columns]]).sort_values(POSITION, kind="stable")


def validate(frame: dd.DataFrame, features: tuple[str, ...]
             ) -> tuple[dd.DataFrame, dd.DataFrame]:
    """Check every row, in one read: the persisted (accepted, rejected) rows.

    Both are persisted from the same read (the checked frame itself is never held, so a
    catalog larger than memory spills once, not twice); repeated ``track_id`` are then
    found among the accepted rows and moved to the rejects, partition by partition. Their
    features are then the float32 values the accepted rows hold.
    """
    accepted, rejects = dask.persist(*split(check_rows(frame, features), features))
    duplicates = find_duplicates(accepted)
    if len(duplicates):
        moved = dd.map_partitions(_with_duplicates, rejects, accepted, duplicates,
                                  align_dataframes=False, meta=rejects._meta)
        accepted, rejects = dask.persist(accepted.map_partitions(_without, duplicates), moved)
    return accepted, rejects
