"""Repeated track ids, found without a shuffle of the ids.

Each partition hashes its valid ids (64-bit FNV-1a over Arrow's buffers) into buckets; one
task per bucket finds the hashes seen more than once; only those few candidate rows have their
real ids compared, on the client. So a hash collision never rejects a row, and the first valid
occurrence of an id is the one kept. Rows may hold the hash (``_id_hash``) in place of their id,
8 bytes a row where an id takes ~30: the candidates' ids are then read again.

A track listed several times (in several playlists, say) repeats its id with the same features
and another genre: :func:`merge_repeats` keeps it once with all its genres, and rejects only the
repeats whose features differ, with the differing values in ``detail``.
"""

from __future__ import annotations

from dataclasses import dataclass

import dask
import dask.dataframe as dd
import numba
import numpy as np
import pandas as pd
import pyarrow as pa

from sonicatlas.contract import DETAIL, GENRE, POSITION, REASON, TRACK_ID
from sonicatlas.io.genres import join_genres

#: The reason of a rejected repeat.
DUPLICATE = "duplicate track_id"
#: Columns whose values the repeats of one track pool (a track is in several genres).
POOLED = (GENRE, "subgenre")
#: The column of an id's hash (:func:`hash_ids`), held in place of the id by rows that have
#: their ids read again where needed.
ID_HASH = "_id_hash"


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
    if ID_HASH in frame:  # accepted rows that hold their ids' hashes
        hashes, positions = frame[ID_HASH].to_numpy(), frame[POSITION].to_numpy()
    else:
        valid = frame[[TRACK_ID, POSITION]]
        if REASON in frame:  # a checked frame; accepted rows have no reason column
            valid = valid[frame[REASON].isna()]
        hashes, positions = hash_ids(valid[TRACK_ID]), valid[POSITION].to_numpy()
    hashes, positions, bounds = _by_bucket(hashes, positions, n_buckets)
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


@dataclass
class Repeats:
    """What :func:`find_repeats` decided about the rows whose id occurred before."""

    #: positions of repeats with the same features as the first occurrence: one track
    merged: np.ndarray
    #: repeats whose features differ, with what differs (``_pos``, ``track_id``, ``detail``)
    rejected: pd.DataFrame
    #: positions of the first occurrences that gained genres, with their pooled columns
    pooled: pd.DataFrame


def _rows_at(frame: pd.DataFrame, positions: np.ndarray, columns: list[str]) -> pd.DataFrame:
    rows = frame[frame[POSITION].isin(positions).to_numpy()]
    return rows[[c for c in columns if c in rows.columns]]


def find_repeats(accepted: dd.DataFrame, features: tuple[str, ...], as_read=None,
                 n_buckets: int | None = None, ids: dd.DataFrame | None = None) -> Repeats:
    """Sort every repeated ``track_id`` among ``accepted`` into merged and rejected repeats.

    Parameters
    ----------
    accepted : dask.dataframe.DataFrame
        Accepted rows with ``_pos``, ``track_id`` (or ``_id_hash``), the features and any of
        ``genre``, ``subgenre``; best persisted (it is read twice).
    features : tuple of str
        The features that must be equal for two rows to be one track.
    as_read : dask.dataframe.DataFrame, optional
        The same rows as read (e.g. the checked frame, float64): the values written into
        ``detail``. Only the partitions holding a rejected repeat are computed. Default: the
        values of ``accepted``.
    n_buckets : int, optional
        Hash buckets, as in :func:`find_duplicates`.
    ids : dask.dataframe.DataFrame, optional
        ``track_id`` of every row as read, partitioned as read (so ``_pos`` finds a row:
        :func:`sonicatlas.io.catalog.read_columns`), for rows that hold ``_id_hash`` in place
        of their id; only the partitions holding a candidate repeat are read.

    Returns
    -------
    Repeats
        The first occurrence of an id is kept; a later one with equal features is merged
        into it (its genres pooled, joined by the contract's separator); one whose features
        differ is rejected, ``detail`` naming each differing feature with both values.
    """
    parts = accepted.to_delayed()
    n_buckets = n_buckets or max(4, len(parts))
    split = [dask.delayed(_hash_buckets, nout=n_buckets)(p, n_buckets) for p in parts]
    candidates = np.concatenate(dask.compute(*[
        dask.delayed(_repeated_hashes)(*(s[b] for s in split)) for b in range(n_buckets)]))
    empty = Repeats(np.empty(0, np.int64), pd.DataFrame({POSITION: np.empty(0, np.int64),
                                                         TRACK_ID: pd.Series(dtype="string"),
                                                         DETAIL: pd.Series(dtype="string")}),
                    pd.DataFrame({POSITION: np.empty(0, np.int64)}))
    if len(candidates) == 0:
        return empty
    columns = [TRACK_ID, POSITION, *features, *POOLED]
    rows = _lookup(parts, candidates, columns)
    if TRACK_ID not in rows:  # rows that hold a hash: their ids as read
        rows = rows.merge(_ids_read(ids, candidates), on=POSITION, validate="one_to_one")
    rows = rows.sort_values(POSITION, kind="stable")
    rows = rows[rows[TRACK_ID].duplicated(keep=False)]  # a hash collision is no repeat
    if rows.empty:
        return empty
    first = rows.groupby(TRACK_ID, sort=False).transform("first")
    later = rows[TRACK_ID].duplicated(keep="first").to_numpy()
    values, kept = rows[list(features)].to_numpy(), first[list(features)].to_numpy()
    differs = (values != kept) & ~(pd.isna(values) & pd.isna(kept))
    same = later & ~differs.any(axis=1)
    conflict = later & differs.any(axis=1)
    pooled = [c for c in POOLED if c in rows.columns]
    merged_rows = rows[~conflict]  # first occurrences and their identical repeats
    keepers = merged_rows.groupby(TRACK_ID, sort=False)
    pooled_table = keepers[POSITION].first().to_frame()
    for column in pooled:
        pooled_table[column] = keepers[column].agg(join_genres)
    pooled_table = pooled_table[keepers.size() > 1].reset_index(drop=True)
    rejected = rows[conflict]
    shown = rows if as_read is None or rejected.empty else _lookup(
        as_read.to_delayed(), np.r_[rejected[POSITION].to_numpy(),
                                    first.loc[conflict, POSITION].to_numpy()], columns)
    shown = shown.set_index(POSITION)
    details = []
    for position, keeper, flags in zip(rejected[POSITION], first.loc[conflict, POSITION],
                                       differs[conflict], strict=True):
        details.append("; ".join(
            # str of a float32 is its shortest round-trip text: 0.52, not 0.5199999809
            f"{name} {shown.at[position, name]}, kept row has {shown.at[keeper, name]}"
            for name, flag in zip(features, flags, strict=True) if flag))
    return Repeats(rows.loc[same, POSITION].to_numpy(dtype=np.int64),
                   pd.DataFrame({POSITION: rejected[POSITION].to_numpy(dtype=np.int64),
                                 TRACK_ID: rejected[TRACK_ID].astype("string").to_numpy(),
                                 DETAIL: pd.array(details, dtype="string")}),
                   pooled_table)


def _lookup(parts, positions: np.ndarray, columns: list[str]) -> pd.DataFrame:
    owners = positions >> 32
    lookups = [dask.delayed(_rows_at)(part, positions[owners == i], columns)
               for i, part in enumerate(parts) if (owners == i).any()]
    return pd.concat(dask.compute(*lookups))


def _ids_read(ids: dd.DataFrame | None, positions: np.ndarray) -> pd.DataFrame:
    """``_pos`` and ``track_id`` of the rows at ``positions``, from ``ids`` as read."""
    if ids is None:
        raise ValueError(f"rows that hold {ID_HASH} need the ids as read to compare repeats")
    owners = positions >> 32
    parts = ids.to_delayed()
    found = dask.compute(*(dask.delayed(_ids_of_part)(parts[i], positions[owners == i])
                           for i in np.unique(owners)))
    return pd.concat(found, ignore_index=True)


def _ids_of_part(frame: pd.DataFrame, positions: np.ndarray) -> pd.DataFrame:
    # the rows taken first: only they become Python strings
    taken = frame[TRACK_ID].iloc[positions & 0xFFFFFFFF].astype("string")
    return pd.DataFrame({POSITION: positions, TRACK_ID: taken.to_numpy()})


def _pool_part(frame: pd.DataFrame, drop: np.ndarray, pooled: pd.DataFrame) -> pd.DataFrame:
    if ID_HASH in frame:  # the repeats are resolved: the hashes have done their work
        frame = frame.drop(columns=[ID_HASH])
    hit = frame[POSITION].isin(drop).to_numpy()
    out = frame[~hit] if hit.any() else frame
    if pooled.empty or not out[POSITION].isin(pooled[POSITION]).any():
        return out
    out = out.copy()
    where = pd.Index(out[POSITION]).get_indexer(pooled[POSITION])
    found = where >= 0
    for column in pooled.columns.drop(POSITION):
        values = out[column].to_numpy(dtype=object, na_value=None).copy()
        values[where[found]] = pooled[column].to_numpy(dtype=object)[found]
        out[column] = pd.array(values, dtype=out[column].dtype)
    return out


def _rejected_part(rejected: pd.DataFrame, accepted: pd.DataFrame, details: pd.DataFrame
                   ) -> pd.DataFrame:
    moved = accepted[accepted[POSITION].isin(details[POSITION]).to_numpy()]
    if moved.empty:
        return rejected
    found = details.set_index(POSITION)
    moved = moved.assign(**{
        REASON: DUPLICATE, DETAIL: moved[POSITION].map(found[DETAIL]).to_numpy(),
        # rows that hold a hash take their id as read
        TRACK_ID: moved[POSITION].map(found[TRACK_ID]).to_numpy()}).astype(
        rejected.dtypes.to_dict())
    return pd.concat([rejected, moved[rejected.columns]]).sort_values(POSITION, kind="stable")


def merge_repeats(accepted: dd.DataFrame, rejects: dd.DataFrame, features: tuple[str, ...],
                  as_read=None, ids: dd.DataFrame | None = None
                  ) -> tuple[dd.DataFrame, dd.DataFrame, int]:
    """The persisted (accepted, rejects) once repeated ids are resolved (:func:`find_repeats`),
    and how many listings were merged.

    A track listed several times is one row with all its genres; the merged listings are in
    neither table (rows read = accepted + rejected + merged). Conflicting repeats move to the
    rejects with reason ``duplicate track_id`` and both values in ``detail``. Accepted rows
    that hold ``_id_hash`` (their ids as read in ``ids``) lose it here: they hold no id after.
    """
    repeats = find_repeats(accepted, features, as_read, ids=ids)
    if not len(repeats.merged) and repeats.rejected.empty:
        if ID_HASH in accepted.columns:
            (accepted,) = dask.persist(accepted.drop(columns=[ID_HASH]))
        return accepted, rejects, 0
    gone = np.r_[repeats.merged, repeats.rejected[POSITION].to_numpy()]
    moved = dd.map_partitions(_rejected_part, rejects, accepted, repeats.rejected,
                              align_dataframes=False, meta=rejects._meta)
    kept = accepted._meta.drop(columns=[ID_HASH], errors="ignore")
    accepted, rejects = dask.persist(
        accepted.map_partitions(_pool_part, gone, repeats.pooled, meta=kept), moved)
    return accepted, rejects, len(repeats.merged)
