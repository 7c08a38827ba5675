"""Repeated track ids, found without a shuffle of the ids.

Each partition hashes its valid ids (64-bit FNV-1a over Arrow's buffers) into buckets; one
task per bucket finds the hashes seen more than once; only those few candidate rows have their
real ids compared, on the client. So a hash collision never rejects a row, and the first valid
occurrence of an id is the one kept.
"""

from __future__ import annotations

import dask
import dask.dataframe as dd
import numba
import numpy as np
import pandas as pd
import pyarrow as pa

from sonicatlas.contract import POSITION, REASON, TRACK_ID


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
    """64-bit FNV-1a of each (non-null) string, read from Arrow's buffers, not Python objects."""
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
    a bucket (a counting sort, two passes: no stable argsort and gathers), and where each
    bucket starts."""
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
    """Whether each hash occurs more than once: an open-addressing table at most half full,
    in linear time where sorting the hashes would not be."""
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
        Output of :func:`~sonicatlas.io.checks.check_rows` or the accepted rows of
        :func:`~sonicatlas.io.checks.split`, best persisted first (it is read twice).
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
