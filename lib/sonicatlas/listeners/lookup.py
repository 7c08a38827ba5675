"""The catalog as every worker holds it: a compact lookup from a track id to its row.

A listen is resolved where it is read, so the log never moves: its ``track_id`` is hashed
from Arrow's buffers and found among the catalog's sorted hashes, which gives the track's row
of features, cluster and artist code. Per track the lookup holds a 64-bit FNV-1a hash of the id
(sorted, searched) and a 32-bit FNV-1a hash (compared on a match), the features (float32 by
default in the job: ~40 bytes), the cluster and an artist code: ~60 bytes, so 0.6 GB for 10M
tracks. A listen is taken for a catalog track only when both hashes agree, so an unknown id is
accepted with a probability of about n_tracks / 2**96, never in practice.

The sorted hashes are searched through a table of where each value of their top bits starts
(about four hashes per bucket): one or two cache misses a listen, where a binary search over
10M hashes takes some twenty.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace

import dask
import dask.dataframe as dd
import numba
import numpy as np
import pandas as pd
import pyarrow as pa

from sonicatlas.contract import ARTIST, CLUSTER, TRACK_ID

__all__ = ["SharedLookup", "TrackLookup", "id_hashes", "run_lookup", "track_lookup"]

_PER_BUCKET = 4  # hashes per bucket of the start table, on average


@numba.njit(cache=True, nogil=True)
def _fnv1a_pair(offsets, data):  # pragma: no cover - numba
    """64- and 32-bit FNV-1a of each string, in one pass over its bytes."""
    n = len(offsets) - 1
    wide = np.empty(n, dtype=np.uint64)
    narrow = np.empty(n, dtype=np.uint32)
    for i in range(n):
        a = np.uint64(14695981039346656037)
        b = np.uint64(2166136261)
        for j in range(offsets[i], offsets[i + 1]):
            byte = np.uint64(data[j])
            a = (a ^ byte) * np.uint64(1099511628211)
            b = ((b ^ byte) * np.uint64(16777619)) & np.uint64(0xFFFFFFFF)
        wide[i] = a
        narrow[i] = b
    return wide, narrow


@numba.njit(cache=True, nogil=True)
def _find(keys, checks, starts, shift, wanted, wanted_checks, valid):  # pragma: no cover
    """Row of each wanted (hash, check) pair among the sorted keys, or -1."""
    out = np.full(len(wanted), -1, dtype=np.int64)
    for i in range(len(wanted)):
        if not valid[i]:
            continue
        h = wanted[i]
        bucket = h >> shift
        j, end = starts[bucket], starts[bucket + 1]
        while j < end and keys[j] < h:
            j += 1
        while j < end and keys[j] == h:
            if checks[j] == wanted_checks[i]:
                out[i] = j
                break
            j += 1
    return out


def id_hashes(ids) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The two FNV-1a hashes of each id, read from Arrow's buffers, and where an id is given.

    Parameters
    ----------
    ids : pandas.Series, pyarrow.Array or list-like of str

    Returns
    -------
    wide : numpy.ndarray of uint64
    narrow : numpy.ndarray of uint32
    valid : numpy.ndarray of bool
        False where the id is missing (its hashes are then meaningless).
    """
    array = pa.array(ids.array if isinstance(ids, pd.Series) else ids, from_pandas=True)
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if not (pa.types.is_string(array.type) or pa.types.is_large_string(array.type)):
        array = array.cast(pa.string())
    _, offsets, data = array.buffers()
    width = np.int64 if pa.types.is_large_string(array.type) else np.int32
    offsets = np.frombuffer(offsets, dtype=width)[array.offset:array.offset + len(array) + 1] \
        if len(array) else np.zeros(1, dtype=width)
    data = np.frombuffer(data, dtype=np.uint8) if data is not None else np.empty(0, np.uint8)
    wide, narrow = _fnv1a_pair(offsets, data)
    valid = np.asarray(array.is_valid()) if array.null_count else np.ones(len(array), bool)
    return wide, narrow, valid


@dataclass(frozen=True, eq=False)
class TrackLookup:
    """Catalog tracks by id hash: their features, cluster and artist code, row by row.

    Rows are in the order of ``keys`` (sorted 64-bit hashes); ``checks`` are the 32-bit hashes
    compared on a match, ``starts[b]`` the first row whose hash has top bits ``b``. ``cluster``
    is -1 where a track has none; ``artist`` is a code into the run's artists, -1 for none, or
    ``None`` when the catalog has no artists.
    """

    keys: np.ndarray
    checks: np.ndarray
    starts: np.ndarray
    shift: int
    features: np.ndarray
    feature_names: tuple[str, ...]
    cluster: np.ndarray
    artist: np.ndarray | None

    def __len__(self) -> int:
        return len(self.keys)

    @property
    def nbytes(self) -> int:
        """Bytes held by the lookup's arrays."""
        arrays = (self.keys, self.checks, self.starts, self.features, self.cluster, self.artist)
        return sum(a.nbytes for a in arrays if a is not None)

    def find(self, ids) -> np.ndarray:
        """Row of each id (int64), -1 where the id is missing or not in the catalog."""
        return self.find_hashes(*id_hashes(ids))

    def find_hashes(self, wide: np.ndarray, narrow: np.ndarray, valid: np.ndarray
                    ) -> np.ndarray:
        """Row of each id given by its :func:`id_hashes`, or -1."""
        return _find(self.keys, self.checks, self.starts, np.uint64(self.shift), wide, narrow,
                     valid)

    @classmethod
    def build_joined(cls, catalog: list[dict], assigned: list[dict],
                     feature_names: tuple[str, ...], dtype) -> TrackLookup:
        """The lookup of the tracks both in ``catalog`` (pieces with features) and in
        ``assigned`` (pieces with clusters and artists): a join on the id hashes in this task,
        where a merge of the two frames would shuffle both."""
        labels = cls.build(assigned, (), dtype)
        pieces = []
        for piece in catalog:
            rows = labels.find_hashes(piece["keys"], piece["checks"],
                                      np.ones(len(piece["keys"]), bool))
            kept = rows >= 0
            rows = rows[kept]
            pieces.append({"keys": piece["keys"][kept], "checks": piece["checks"][kept],
                           "features": piece["features"][kept],
                           "cluster": labels.cluster[rows], "artist": None if
                           labels.artist is None else labels.artist[rows], "artists": None})
        return cls.build(pieces, feature_names, dtype)  # artist codes: the labels' already

    @classmethod
    def build(cls, pieces: list[dict], feature_names: tuple[str, ...], dtype) -> TrackLookup:
        """Assemble the pieces of :func:`lookup_piece` (of an id given twice, either is found)."""
        def joined(name, empty):
            parts = [p[name] for p in pieces]
            return np.concatenate(parts) if parts else empty

        keys = joined("keys", np.empty(0, np.uint64))
        features = np.concatenate([p["features"] for p in pieces]) if pieces \
            else np.empty((0, len(feature_names)), dtype)
        artist = None
        if pieces and pieces[0]["artist"] is not None:
            artist = np.concatenate([p["artist"] for p in pieces])
        if pieces and pieces[0]["artists"] is not None:
            # One code per artist name across the catalog: each piece's codes are shifted
            # onto the codes of the union of every piece's names.
            names = pd.concat([pd.Series(p["artists"]) for p in pieces])
            codes = np.append(pd.factorize(names)[0], -1).astype(np.int32)  # last: none
            start = np.cumsum([0, *(len(p["artists"]) for p in pieces)])
            artist = np.concatenate([codes[np.where(p["artist"] >= 0, start[i] + p["artist"],
                                                    len(codes) - 1)]
                                     for i, p in enumerate(pieces)])
        order = np.argsort(keys)
        keys = keys[order]
        bits = max(1, int(np.ceil(np.log2(max(len(keys), 1) / _PER_BUCKET))))
        bits = min(bits, 32)
        shift = 64 - bits
        edges = np.arange(2 ** bits, dtype=np.uint64) << np.uint64(shift)
        starts = np.append(np.searchsorted(keys, edges), len(keys)).astype(np.int64)
        return cls(keys=keys, checks=joined("checks", np.empty(0, np.uint32))[order],
                   starts=starts, shift=shift,
                   features=np.ascontiguousarray(features.astype(dtype, copy=False)[order]),
                   feature_names=tuple(feature_names),
                   cluster=joined("cluster", np.empty(0, np.int32))[order],
                   artist=None if artist is None else artist[order])


def lookup_piece(frame: pd.DataFrame, feature_names: tuple[str, ...], dtype) -> dict:
    """What one catalog partition gives the lookup: hashes, features, cluster, artist codes."""
    frame = frame[frame[TRACK_ID].notna()]
    wide, narrow, _ = id_hashes(frame[TRACK_ID])
    if CLUSTER in frame.columns:
        cluster = frame[CLUSTER].to_numpy(dtype=np.float64, na_value=np.nan)
        cluster = np.where(np.isnan(cluster), -1, cluster).astype(np.int32)
    else:
        cluster = np.full(len(frame), -1, dtype=np.int32)
    piece = {"keys": wide, "checks": narrow, "cluster": cluster,
             "features": frame[list(feature_names)].to_numpy(dtype=dtype).reshape(
                 len(frame), len(feature_names)),
             "artist": None, "artists": None}
    if ARTIST in frame.columns:
        codes, names = pd.factorize(frame[ARTIST], use_na_sentinel=True)
        # Names stay Arrow strings: their union is factorized by pyarrow, not as objects.
        piece["artist"], piece["artists"] = codes.astype(np.int32), names.array
    return piece


@dataclass(frozen=True)
class SharedLookup:
    """A :class:`TrackLookup` made once, as one dask key that every task reading it shares,
    with what a graph must know of it before it is made."""

    data: object  # a dask Delayed (or one holding a Future, once persisted)
    feature_names: tuple[str, ...]
    dtype: np.dtype
    has_artist: bool

    def empty(self) -> TrackLookup:
        """A lookup of no tracks with this one's columns: what dask's meta is computed from."""
        piece = {"keys": np.empty(0, np.uint64), "checks": np.empty(0, np.uint32),
                 "cluster": np.empty(0, np.int32),
                 "features": np.empty((0, len(self.feature_names)), self.dtype),
                 "artist": np.empty(0, np.int32) if self.has_artist else None,
                 "artists": pd.array([], dtype="string") if self.has_artist else None}
        return TrackLookup.build([piece], self.feature_names, self.dtype)

    def share(self, client) -> SharedLookup:
        """Make the lookup on a worker and copy it to every worker of ``client``, once."""
        from distributed import futures_of

        data = client.persist(self.data)
        client.replicate(futures_of(data))
        return replace(self, data=data)


def run_lookup(catalog: dd.DataFrame, assigned: dd.DataFrame, feature_names: tuple[str, ...],
               dtype=np.float32) -> SharedLookup:
    """Lazy: the lookup of a cluster-tracks run's tracks, from its input catalog (``track_id``
    and ``feature_names``) and its ``assignments/`` (``track_id``, ``cluster``, optionally
    ``artist_name``), joined on the id hashes when assembled: only the tracks in both."""
    feature_names, dtype = tuple(feature_names), np.dtype(dtype)
    labels = [c for c in (CLUSTER, ARTIST) if c in assigned.columns]
    features = [dask.delayed(lookup_piece)(part, feature_names, dtype)
                for part in catalog[[TRACK_ID, *feature_names]].to_delayed()]
    clusters = [dask.delayed(lookup_piece)(part, (), dtype)
                for part in assigned[[TRACK_ID, *labels]].to_delayed()]
    data = dask.delayed(TrackLookup.build_joined, pure=False)(
        features, clusters, feature_names, dtype,
        dask_key_name=f"track-lookup-{uuid.uuid4().hex}")
    return SharedLookup(data=data, feature_names=feature_names, dtype=dtype,
                        has_artist=ARTIST in labels)


def track_lookup(tracks, feature_names: tuple[str, ...] = (), dtype=None) -> SharedLookup:
    """Lazy: the lookup of a catalog, assembled in one task from a piece per partition.

    Parameters
    ----------
    tracks : dask or pandas DataFrame or Series, or a list-like of ids
        ``track_id`` and, for the features' users, ``feature_names``, ``cluster`` and
        optionally ``artist_name``. Missing ids are ignored; of an id given twice, either row
        counts.
    feature_names : tuple of str, optional
        Feature columns to hold; none for a lookup that only checks ids.
    dtype : numpy dtype, optional
        Of the held features; default the tracks' own (their common type, at least float32),
        so nothing is rounded. float32 halves the lookup of a float64 catalog.

    Returns
    -------
    SharedLookup
    """
    if isinstance(tracks, (dd.Series, pd.Series)):
        tracks = tracks.rename(TRACK_ID).to_frame()
    elif not isinstance(tracks, (dd.DataFrame, pd.DataFrame)):
        tracks = pd.DataFrame({TRACK_ID: pd.array(list(tracks), dtype="string")})
    feature_names = tuple(feature_names)
    if dtype is None:
        dtype = np.result_type(np.float32, *(tracks[f].dtype for f in feature_names))
    dtype = np.dtype(dtype)
    keep = [TRACK_ID, *feature_names,
            *(c for c in (CLUSTER, ARTIST) if feature_names and c in tracks.columns)]
    tracks = tracks[keep]
    if isinstance(tracks, dd.DataFrame):
        pieces = [dask.delayed(lookup_piece)(part, feature_names, dtype)
                  for part in tracks.to_delayed()]
    else:
        pieces = [lookup_piece(tracks, feature_names, dtype)]
    name = f"track-lookup-{uuid.uuid4().hex}"
    data = dask.delayed(TrackLookup.build, pure=False)(pieces, feature_names, dtype,
                                                      dask_key_name=name)
    return SharedLookup(data=data, feature_names=feature_names, dtype=dtype,
                        has_artist=ARTIST in keep)
