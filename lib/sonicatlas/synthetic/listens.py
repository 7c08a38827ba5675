"""Synthetic listening logs over a synthetic catalog, with planted listener segments.

The listeners and their taste groups come from :mod:`sonicatlas.synthetic.listeners`. Listens
come in sessions of consecutive tracks, drawn from a popularity-weighted pool of the catalog's
tracks by each group's genre preference, at hours of the group's daily rhythm. Each partition
is a pure function of ``(seed, partition)``, generated on the Dask workers.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass

import dask
import dask.dataframe as dd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from sonicatlas import storage
from sonicatlas.contract import TRACK_ID
from sonicatlas.errors import InputError, MissingColumnsError, OutputExistsError
from sonicatlas.synthetic.listeners import TastePreferences, generate_users, taste_parameters
from sonicatlas.synthetic.tracks import stream_key

__all__ = ["GeneratedListens", "TrackPool", "build_track_pool", "generate_listens",
           "generate_listens_partition", "listen_window"]

WINDOW_DAYS = 90
#: Mean listens per session (geometric), and the pause between two tracks of a session.
SESSION_LISTENS, MAX_PAUSE_US = 8, 20_000_000
#: A track's sampling weight is (popularity + 1) ** POPULARITY_POWER within its genre.
POPULARITY_POWER = 2.0
#: Share of a group's sessions that start near its peak hour (the rest: any hour).
PEAK_SHARE, PEAK_SD_HOURS = 0.85, 1.5
_US_PER_DAY = 86_400_000_000
_STRINGS = {pa.string(): pd.StringDtype("pyarrow")}  # what dask gives the catalog's strings
# hash salts; 11-14 and 16 are those of sonicatlas.synthetic.listeners: keep each distinct
_WINDOW, _LISTEN = 15, 17


@dataclass(frozen=True)
class GeneratedListens:
    """What :func:`generate_listens` wrote: ``out/listens`` and ``out/users``."""

    out: str
    listens: int
    users: int
    npartitions: int
    seed: int


@dataclass(frozen=True, eq=False)
class TrackPool:
    """Tracks to draw listens from, in blocks of one genre and one popularity.

    Drawing a block by weight, then one of its tracks uniformly, searches a few hundred blocks,
    not a million tracks: three times faster, as cache misses dominate.
    """

    genres: tuple[str, ...]  # genres present, in TastePreferences order
    ids: pa.StringArray
    bounds: np.ndarray  # per block: k + cumulative weight within its genre k, ending at k + 1
    start: np.ndarray  # per block: first track
    size: np.ndarray  # per block: number of tracks
    last: np.ndarray  # per genre: its last block


def listen_window(seed: int) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The UTC ``(start, end)`` of a seed's listens: 90 days to a midnight in 2024-2025."""
    end = pd.Timestamp("2024-01-01", tz="UTC") + pd.Timedelta(days=stream_key(seed, _WINDOW) % 731)
    return end - pd.Timedelta(days=WINDOW_DAYS), end


def build_track_pool(tracks: str, seed: int = 0, per_genre: int = 200_000,
                     storage_options: dict | None = None) -> TrackPool:
    """Read ``track_id, genre, popularity`` and keep a uniform sample of each genre.

    The sample is the ``per_genre`` tracks of each genre with the smallest seeded hash of their
    track_id (bottom-k sampling): uniform, the same for any partitioning of the catalog, and
    reduced on the workers so only the pool reaches the client. Genres outside
    :func:`taste_parameters`' list are ignored.

    Parameters
    ----------
    tracks : str
        Catalog directory or fsspec URL.
    seed : int, default 0
        Chooses the sample.
    per_genre : int, default 200_000
        Most tracks kept per genre.
    storage_options : dict, optional
        Passed to ``read_parquet``.

    Returns
    -------
    TrackPool
        The sample, with weights (popularity + 1) ** 2 within each genre.
    """
    columns = [TRACK_ID, "genre", "popularity"]
    try:
        ddf = dd.read_parquet(tracks, columns=columns, storage_options=storage_options)
    except KeyError as exc:  # dask's message quotes the missing columns
        raise MissingColumnsError(f"{tracks} needs columns {columns}: {exc}") from exc
    hash_key = f"{stream_key(seed, _LISTEN):016x}"

    def bottom(frame: pd.DataFrame) -> pd.DataFrame:
        if "_hash" not in frame:  # a partition of the catalog (not a combination)
            frame = frame.assign(_hash=pd.util.hash_array(
                frame[TRACK_ID].to_numpy(), hash_key=hash_key, categorize=False))
        keep, hashes = np.ones(len(frame), bool), frame["_hash"].to_numpy()
        for index in frame.groupby("genre", sort=False).indices.values():
            if len(index) > per_genre:
                keep[index[np.argpartition(hashes[index], per_genre)[per_genre:]]] = False
        return frame if keep.all() else frame[keep]

    meta = ddf._meta.assign(_hash=np.uint64(0))
    sample = ddf.reduction(bottom, bottom, combine=bottom, meta=meta, split_every=8).compute()
    groups = sample.groupby("genre", sort=False).indices
    genres = [g for g in taste_parameters(seed, 1).genres if g in groups]
    if not genres:
        raise InputError(f"{tracks} holds no tracks of the known genres")
    popularity = np.maximum(sample["popularity"].fillna(0).to_numpy(float), 0)
    hashes = sample["_hash"].to_numpy()
    order, bounds, start, size = [], [], [], []
    for k, genre in enumerate(genres):
        # Sorted by popularity, then hash: the pool does not depend on the catalog's layout.
        index = groups[genre][np.lexsort((hashes[groups[genre]], popularity[groups[genre]]))]
        levels, first, count = np.unique(popularity[index], return_index=True,
                                         return_counts=True)
        # Squared popularity: the 0-100 index is compressed (roughly log plays), so squaring
        # restores a long tail, a top track getting ~10^4 times a popularity-0 track's plays.
        weight = np.cumsum(count * (levels + 1) ** POPULARITY_POWER)
        bounds.append(k + weight / weight[-1])
        start.append(first + sum(len(i) for i in order))
        size.append(count)
        order.append(index)
    ids = pc.take(pa.array(sample[TRACK_ID], pa.string()), np.concatenate(order))
    return TrackPool(tuple(genres), ids, np.concatenate(bounds), np.concatenate(start),
                     np.concatenate(size), np.cumsum([len(b) for b in bounds]) - 1)


def generate_listens_partition(users: pd.DataFrame, pool: TrackPool, rows: int, seed: int,
                               tastes: int, partition: int) -> pd.DataFrame:
    """Generate one partition of listens; pure and deterministic in ``(seed, partition)``.

    Parameters
    ----------
    users : pandas.DataFrame
        The listeners, from :func:`generate_users` (non-empty when ``rows > 0``).
    pool : TrackPool
        From :func:`build_track_pool`.
    rows, seed, tastes, partition : int
        Listens to make, seed, number of taste groups and partition number.

    Returns
    -------
    pandas.DataFrame
        user_id, track_id, ts (datetime64[us, UTC]) and ms_played (int64), ordered by user,
        then session.
    """
    params = taste_parameters(seed, tastes)
    rng = np.random.default_rng([seed, partition, _LISTEN])
    if rows and users.empty:
        raise ValueError("a partition with listens needs users")
    activity = users["activity"].to_numpy()
    counts = rng.multinomial(rows, activity / activity.sum()) if rows else np.zeros(len(users))
    owner = np.repeat(np.arange(len(users)), counts.astype(np.int64))
    group = users["taste_group"].to_numpy()[owner]

    present = [params.genres.index(g) for g in pool.genres]
    preference = params.preference[:, present]
    cum, u = np.cumsum(preference / preference.sum(1, keepdims=True), 1), rng.random(rows)
    genre = np.zeros(rows, dtype=np.intp)
    for j in range(len(present) - 1):  # inverse CDF of each listen's group preference
        genre += u >= cum[group, j]
    block = np.searchsorted(pool.bounds, genre + rng.random(rows), side="right")
    block = np.minimum(block, pool.last[genre])  # k + u may round up to k + 1
    size = pool.size[block]
    track = pool.start[block] + np.minimum((rng.random(rows) * size).astype(np.int64), size - 1)
    ms_played = np.clip(rng.lognormal(np.log(200_000), 0.4, rows), 30_000, 360_000)
    ms_played = ms_played.astype(np.int64)

    # Sessions: a user's first listen starts one, any other listen with 1 / SESSION_LISTENS.
    new = rng.random(rows) < 1 / SESSION_LISTENS
    new[(np.cumsum(counts) - counts)[counts > 0].astype(np.int64)] = True
    first = np.flatnonzero(new)
    session = np.cumsum(new) - 1
    gap = ms_played * 1000 + rng.integers(0, MAX_PAUSE_US, rows)
    elapsed = np.cumsum(gap) - gap
    offset = elapsed - elapsed[first][session]
    start = _session_starts(rng, params, group[first], seed)
    start = start[np.lexsort((start, owner[first]))]  # a user's sessions in time order
    _, end = listen_window(seed)
    duration = np.add.reduceat(gap, first) if rows else gap
    start = np.minimum(start, end.value // 1000 - duration)  # the last session ends in time
    return pa.table({
        "user_id": pc.take(pa.array(users["user_id"], pa.string()), owner),
        TRACK_ID: pc.take(pool.ids, track),
        "ts": pa.array(start[session] + offset, pa.timestamp("us", tz="UTC")),
        "ms_played": ms_played,
    }).to_pandas(types_mapper=_STRINGS.get)


def _session_starts(rng, params: TastePreferences, group: np.ndarray, seed: int) -> np.ndarray:
    """Start (µs since the epoch) of sessions: weekday or weekend day, hour from the rhythm."""
    begin, _ = listen_window(seed)
    weekday = (begin.dayofweek + np.arange(WINDOW_DAYS)) % 7
    weekend_days, work_days = np.flatnonzero(weekday >= 5), np.flatnonzero(weekday < 5)
    rate = len(weekend_days) * params.weekend_rate[group]
    weekend = rng.random(len(group)) < rate / (rate + len(work_days))
    day = np.where(weekend, rng.choice(weekend_days, len(group)),
                   rng.choice(work_days, len(group)))
    peak = np.where(weekend, params.weekend_peak_hour[group], params.peak_hour[group])
    hour = np.where(rng.random(len(group)) < PEAK_SHARE,
                    (peak + PEAK_SD_HOURS * rng.standard_normal(len(group))) % 24,
                    rng.uniform(0, 24, len(group)))
    return begin.value // 1000 + day * _US_PER_DAY + (hour * 3.6e9).astype(np.int64)


def _partition(users: pd.DataFrame, pool, listens, rows_per_partition, seed, tastes,
               partition_info=None):
    p = partition_info["number"]
    rows = min(rows_per_partition, listens - p * rows_per_partition)
    return generate_listens_partition(users, pool, rows, seed, tastes, p)


def _users_of(partition: int, npartitions: int, users: int, seed: int, tastes: int):
    return generate_users(partition * users // npartitions, (partition + 1) * users // npartitions,
                          seed, tastes)


def _ship(pool: TrackPool):
    # One copy per worker: scattered with a distributed Client, else a single graph key.
    try:
        from distributed import default_client

        return default_client().scatter(pool, hash=False)
    except (ImportError, ValueError):
        return dask.delayed(pool, name=f"track-pool-{uuid.uuid4().hex}", traverse=False)


def generate_listens(tracks: str, out: str, users: int, listens: int, seed: int = 0,
                     rows_per_partition: int = 2_000_000, tastes: int = 6,
                     storage_options: dict | None = None, *,
                     overwrite: bool = False) -> GeneratedListens:
    """Generate listening logs for a catalog and write ``out/listens`` and ``out/users``.

    Partition ``p`` holds ``rows_per_partition`` listens (the last fewer) of the users in a
    contiguous range, so all of a user's listens are in one partition; readers must not rely
    on that. Tracks come from :func:`build_track_pool` (at most 200k per genre). Both datasets
    are written on the workers into a hidden sibling of ``out`` that is renamed into place:
    both or nothing.

    Parameters
    ----------
    tracks : str
        A catalog from :func:`sonicatlas.synthetic.tracks.generate_tracks`; only ``track_id``,
        ``genre``
        and ``popularity`` are read.
    out : str
        Destination directory, a local path or any fsspec URL.
    users, listens : int
        Number of users and of listens; ``users >= npartitions``.
    seed : int, default 0
        The same arguments always give the same data.
    rows_per_partition : int, default 2_000_000
        Listens per partition.
    tastes : int, default 6
        Number of planted taste groups, see :func:`taste_parameters`.
    storage_options : dict, optional
        Passed to fsspec, to the catalog reader and to ``to_parquet``.
    overwrite : bool, default False
        Replace an existing non-empty ``out`` instead of raising ``FileExistsError``.

    Raises
    ------
    OutputExistsError
        ``out`` is not empty and ``overwrite`` is false (a FileExistsError).
    InputError, MissingColumnsError
        Invalid sizes (a ValueError); the catalog lacks a column or the known genres.

    Returns
    -------
    GeneratedListens
        ``listens/``: user_id, track_id, ts (timestamp[us, UTC], in :func:`listen_window`),
        ms_played (int64). ``users/``: user_id, country, subscription (free or premium) and
        taste_group (int64), the ground truth of the segments.
    """
    npartitions = math.ceil(listens / rows_per_partition) if rows_per_partition >= 1 else 0
    if listens < 1 or npartitions < 1 or not npartitions <= users < 10**9 or tastes < 1:
        raise InputError("need listens >= 1, rows_per_partition >= 1, tastes >= 1 and "
                         "ceil(listens / rows_per_partition) <= users < 10**9")
    fs, path = storage.resolve(out, storage_options)
    if storage.occupied(fs, path) and not overwrite:
        raise OutputExistsError(f"{out} exists and is not empty; pass overwrite to replace it")
    pool = build_track_pool(tracks, seed, storage_options=storage_options)
    user_frames = dd.from_map(_users_of, range(npartitions),
                              args=(npartitions, users, seed, tastes),
                              meta=generate_users(0, 0, seed, tastes), label="generate-users")
    meta = generate_listens_partition(user_frames._meta, pool, 0, seed, tastes, 0)
    logs = user_frames.map_partitions(_partition, _ship(pool), listens, rows_per_partition, seed,
                                      tastes, meta=meta, align_dataframes=False)
    write = {"write_index": False, "storage_options": storage_options, "compute": False}
    with storage.replacing(fs, path) as partial:
        dask.compute(logs.to_parquet(fs.unstrip_protocol(f"{partial}/listens"), **write),
                     user_frames.drop(columns="activity")
                     .to_parquet(fs.unstrip_protocol(f"{partial}/users"), **write))
    return GeneratedListens(out=out, listens=listens, users=users, npartitions=npartitions,
                            seed=seed)
