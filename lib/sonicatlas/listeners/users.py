"""Per-user features from a listening log resolved against a clustered track catalog.

Everything stays distributed; the plan for ``user_features`` is

1. **resolve** each listen where it is read: its track's row in a
   :class:`~sonicatlas.listeners.lookup.TrackLookup` that every worker holds (made once from
   the catalog and shared by every task), so the catalog is never joined with the log.
   Listens already checked by :func:`~sonicatlas.listeners.checks.check_listens` with the same
   lookup carry their track's row and are not looked up again. What is kept of a listen is
   four narrow columns: user, time (int64 microseconds), track row (int32) and play weight.
2. **shuffle** those narrow plays on ``user_id`` into ``split_out`` partitions, so each
   partition holds every play of its users.
3. **per user**, in each partition (blockwise, no further shuffle): the track's features,
   cluster and artist come from the worker's lookup by row; one factorisation of the users
   gives every sum as a ``np.bincount``: play weights, weighted feature sums, weights per
   (user, hour), (user, weekday), (user, cluster), the distinct dates, and the (user, artist)
   weights the artist entropy is taken from; the last play gives the recency.

Cost: the narrow plays are what cross the network, about 42 bytes a listen (the user id's
characters and offset, then 8 + 4 + 8 bytes). Summing each partition per user before the
shuffle does not pay: a partition of a log holds most of its users once or twice, so
per-user partial sums have nearly as many rows as the log and are several times wider (a
float per feature), and the distinct dates, hours and artists must be carried per play
anyway.

Entropies are Shannon entropies in nats, ``-sum(p * ln p)`` with ``0 ln 0 = 0``.
``cluster_entropy`` is over the ``share_cluster_*`` of a user; ``artist_entropy`` over the
share of the user's plays by each artist, among plays of tracks with a known artist.

Hours: 24 ``hour_<h>`` shares (UTC) rather than dayparts. The log has no listener time zone,
so UTC dayparts would mislabel "morning" for most of the world; 24 shares cost 24 floats a
user, lose nothing, and any daypart scheme (in any offset) is a sum of them.
"""

from __future__ import annotations

import dask.dataframe as dd
import numpy as np
import pandas as pd

from sonicatlas.contract import FEATURES, REASON, TRACK_ID, TRACK_ROW, TS, USER_ID
from sonicatlas.listeners.checks import to_utc, utc_timestamp
from sonicatlas.listeners.lookup import SharedLookup, TrackLookup, track_lookup

__all__ = ["feature_columns", "user_features"]

_WEIGHT = "_w"
_LAST = "_last"
_US = "_us"
_ROW = "_row"
_US_PER_HOUR = 3_600_000_000
_US_PER_DAY = 24 * _US_PER_HOUR


def feature_columns(n_clusters: int, features: tuple[str, ...] = FEATURES) -> list[str]:
    """The columns of :func:`user_features`, in order.

    Parameters
    ----------
    n_clusters : int
        Number of track clusters.
    features : tuple of str, optional
        Audio features averaged per user.

    Returns
    -------
    list of str
    """
    return ["plays", "active_days", "recency_days",
            *(f"mean_{f}" for f in features),
            *(f"share_cluster_{c}" for c in range(n_clusters)),
            "cluster_entropy", "artist_entropy",
            *(f"hour_{h}" for h in range(24)),
            *(f"weekday_{d}" for d in range(7))]


# -- per partition of the log, where it is read -------------------------------------------------

def _timestamps_us(ts: pd.Series) -> np.ndarray:
    return ts.dt.tz_localize(None).to_numpy(dtype="datetime64[us]").view(np.int64)


def _played(frame: pd.DataFrame, lookup: TrackLookup, weight: str | None,
            resolved: bool) -> pd.DataFrame:
    """A partition's accepted plays of catalog tracks, narrowly: user, time (microseconds),
    the track's row in ``lookup`` and the play weight."""
    if len(lookup) >= 2 ** 31:
        raise ValueError(f"a track lookup of {len(lookup):,} tracks is past the int32 rows "
                         "a play carries")
    if REASON in frame.columns:
        frame = frame[frame[REASON].isna().to_numpy()]
    w = (frame[weight].to_numpy(dtype=np.float64) if weight
         else np.ones(len(frame)))  # with ms_played every row is one play
    ts = to_utc(frame[TS])
    rows = (frame[TRACK_ROW].to_numpy(dtype=np.int64) if resolved
            else lookup.find(frame[TRACK_ID].astype("string")))
    user = frame[USER_ID].astype("string")
    keep = (rows >= 0) & user.notna().to_numpy() & ts.notna().to_numpy()
    return pd.DataFrame({USER_ID: user[keep].array, _US: _timestamps_us(ts[keep]),
                         _ROW: rows[keep].astype(np.int32), _WEIGHT: w[keep]})


# -- per partition of users (after the shuffle) ---------------------------------------------------

def _entropy(shares: np.ndarray, axis: int = -1) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(shares > 0, -shares * np.log(shares), 0.0)
    return terms.sum(axis=axis)


def _user_rows(plays: pd.DataFrame, lookup: TrackLookup, *, n_clusters: int,
               features: tuple[str, ...], has_artist: bool) -> pd.DataFrame:
    """The features of the users whose plays are all in ``plays`` (narrow, see ``_played``).

    Cluster -1 (noise, missing, or outside ``0..n_clusters-1``) is unassigned and artist -1
    none: such plays count in ``plays`` and in no share.
    """
    codes, users = pd.factorize(plays[USER_ID])
    n = len(users)
    rows = plays[_ROW].to_numpy(dtype=np.int64)
    w = plays[_WEIGHT].to_numpy(dtype=np.float64)
    us = plays[_US].to_numpy(dtype=np.int64)

    def total(values: np.ndarray) -> np.ndarray:
        return np.bincount(codes, weights=values, minlength=n)

    total_plays = total(w)
    out = {"plays": total_plays}
    values = lookup.features[rows]  # one gather of each play's row, then its columns
    for i, f in enumerate(features):
        out[f"mean_{f}"] = total(w * values[:, i]) / total_plays
    del values
    last = np.full(n, np.iinfo(np.int64).min)
    np.maximum.at(last, codes, us)
    day = us // _US_PER_DAY

    def shares(category: np.ndarray, width: int, keep=slice(None)) -> np.ndarray:
        weights = np.bincount(codes[keep] * width + category[keep], weights=w[keep],
                              minlength=n * width)
        return weights.reshape(n, width) / total_plays[:, None]

    cluster = lookup.cluster[rows].astype(np.int64)
    assigned = (cluster >= 0) & (cluster < n_clusters)
    by_cluster = shares(np.where(assigned, cluster, 0), n_clusters, assigned)
    by_hour = shares((us // _US_PER_HOUR) % 24, 24)
    by_weekday = shares((day + 3) % 7, 7)  # 1970-01-01 was a Thursday (Monday = 0)
    out.update({f"share_cluster_{c}": by_cluster[:, c] for c in range(n_clusters)})
    out.update({f"hour_{h}": by_hour[:, h] for h in range(24)})
    out.update({f"weekday_{d}": by_weekday[:, d] for d in range(7)})
    out["active_days"] = _distinct_per_user(codes, n, day)
    in_clusters = by_cluster.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        out["cluster_entropy"] = np.where(in_clusters[:, 0] > 0,
                                          _entropy(by_cluster / in_clusters), np.nan)
    out["artist_entropy"] = np.full(n, np.nan)
    if has_artist and lookup.artist is not None:
        artist = lookup.artist[rows].astype(np.int64)
        known = artist >= 0
        if known.any():
            (user, _), inverse = _distinct_rows([codes[known].astype(np.int64),
                                                 artist[known]])
            per_pair = np.bincount(inverse, weights=w[known], minlength=len(user))
            share = per_pair / np.bincount(user, weights=per_pair, minlength=n)[user]
            entropy = np.bincount(user, weights=-share * np.log(share), minlength=n)
            listened = np.bincount(user, minlength=n) > 0
            out["artist_entropy"] = np.where(listened, entropy, np.nan)
    out["recency_days"] = np.full(n, np.nan)  # filled in once ``now`` is known
    # Written into one column-major block: the frame takes it as is, with no consolidating copy.
    names = feature_columns(n_clusters, features)
    block = np.empty((n, len(names)), order="F")
    for j, name in enumerate(names):
        block[:, j] = out[name]
    frame = pd.DataFrame(block, columns=names, copy=False,
                         index=pd.Index(users, name=USER_ID, dtype=plays[USER_ID].dtype))
    frame[_LAST] = last
    return frame


def _distinct_per_user(codes: np.ndarray, n: int, values: np.ndarray,
                       table_limit: int = 1 << 26) -> np.ndarray:
    """How many distinct ``values`` (int64) each of ``n`` users has, as float64; by a presence
    table of users x values where it has at most ``table_limit`` cells, else by a sort."""
    if not len(values):
        return np.zeros(n)
    low = int(values.min())
    span = int(values.max()) - low + 1
    if n * span <= table_limit:
        seen = np.zeros(n * span, dtype=bool)
        seen[codes.astype(np.int64) * span + (values - low)] = True
        return seen.reshape(n, span).sum(axis=1, dtype=np.int64).astype(np.float64)
    (user, _), _ = _distinct_rows([codes.astype(np.int64), values])
    return np.bincount(user, minlength=n).astype(np.float64)


def _distinct_rows(columns: list[np.ndarray]) -> tuple[list[np.ndarray], np.ndarray]:
    """The distinct rows of int64 ``columns`` (each row's values as one mixed-radix key),
    and each row's index among them."""
    if not len(columns[0]):
        return [c[:0] for c in columns], np.empty(0, dtype=np.int64)
    lows = [c.min() for c in columns]
    spans = [int(c.max()) - int(low) + 1 for c, low in zip(columns, lows, strict=True)]
    if np.prod([float(s) for s in spans]) >= 2.0 ** 62:  # too wide for one key: pandas
        frame = pd.DataFrame(dict(enumerate(columns)))
        inverse, distinct = pd.MultiIndex.from_frame(frame).factorize()
        return [distinct.get_level_values(i).to_numpy(np.int64) for i in range(len(columns))
                ], inverse.astype(np.int64)
    keys = np.zeros(len(columns[0]), dtype=np.int64)
    for column, low, span in zip(columns, lows, spans, strict=True):
        keys = keys * span + (column - low)
    unique, inverse = np.unique(keys, return_inverse=True)
    out = []
    for low, span in zip(reversed(lows), reversed(spans), strict=True):
        out.append(unique % span + low)
        unique = unique // span
    return out[::-1], inverse


def _recency(frame: pd.DataFrame, reference: int) -> pd.DataFrame:
    out = frame.drop(columns=_LAST)
    out["recency_days"] = (reference - frame[_LAST].to_numpy()) / _US_PER_DAY
    return out


# -- the pipeline -----------------------------------------------------------------------------

def user_features(listens: dd.DataFrame, tracks: dd.DataFrame, n_clusters: int, *, now=None,
                  split_out: int | None = None,
                  features: tuple[str, ...] = FEATURES) -> dd.DataFrame:
    """Lazy: one row per user of play, taste and timing features (see the module docstring).

    Parameters
    ----------
    listens : dask.dataframe.DataFrame
        ``user_id``, ``track_id``, ``ts`` and ``play_count`` (a row is that many plays) or
        ``ms_played`` (a row is one play); best the output of :func:`check_listens`, whose
        rejected rows (with a ``reason``) are skipped. Rows with a missing user, track or ts,
        and plays of tracks not in ``tracks``, drop out.
    tracks : dask.dataframe.DataFrame or SharedLookup
        One row per ``track_id`` with ``features``, ``cluster`` (int; values outside
        ``0..n_clusters-1``, e.g. noise ``-1``, are unassigned) and optionally ``artist_name``;
        or their :func:`~sonicatlas.listeners.lookup.track_lookup` over ``features``.
    n_clusters : int
        Number of clusters: one ``share_cluster_<c>`` column each.
    now : timestamp-like, optional
        Reference time for ``recency_days``; default the latest play in the (joined) log.
        Naive values are taken as UTC.
    split_out : int, optional
        Partitions of the result; default one per four partitions of the joined log.
    features : tuple of str, optional
        Audio features to average; default :data:`sonicatlas.contract.FEATURES`.

    Returns
    -------
    dask.dataframe.DataFrame
        Indexed by ``user_id`` (hash-partitioned, unsorted), with columns
        :func:`feature_columns`: ``plays`` (sum of weights), ``active_days`` (distinct UTC
        dates), ``recency_days`` (fractional days from the last play to ``now``), play-weighted
        ``mean_<feature>``, ``share_cluster_<c>`` (share of all plays; unassigned plays are in
        none), ``cluster_entropy`` (NaN without assigned plays), ``artist_entropy`` (NaN
        without plays of a known artist, or without ``artist_name``), ``hour_<h>`` (UTC) and
        ``weekday_<d>`` (Monday = 0) shares. All float64.
    """
    weight = "play_count" if "play_count" in listens.columns else None
    if weight is None and "ms_played" not in listens.columns:
        raise ValueError("a listening log needs ms_played or play_count")
    if isinstance(tracks, SharedLookup):
        lookup = tracks
        if lookup.feature_names != tuple(features):
            raise ValueError(f"the lookup holds {lookup.feature_names}, not {features}")
    else:
        lookup = track_lookup(tracks, features)
    resolved = TRACK_ROW in listens.columns and tracks is lookup
    plays = listens.map_partitions(_played, lookup.data, weight, resolved,
                                   meta=_played(listens._meta, lookup.empty(), weight, resolved))
    split_out = split_out or max(1, plays.npartitions // 4)
    # Same hash of the same key: every play of a user lands in one partition.
    by_user = plays.shuffle(on=USER_ID, npartitions=split_out)
    options = {"n_clusters": n_clusters, "features": tuple(features),
               "has_artist": lookup.has_artist}
    meta = _user_rows(plays._meta, lookup.empty(), **options)
    out = by_user.map_partitions(_user_rows, lookup.data, **options, meta=meta)

    if now is None:
        reference = out[_LAST].max()
    else:
        reference = _timestamps_us(pd.Series([utc_timestamp(now)]))[0]
    # Blockwise with the scalar broadcast: assigning ``reference - out[_LAST]`` as a column
    # makes dask align the two by a shuffle on the (unknown-division) index.
    return out.map_partitions(_recency, reference, meta=_recency(meta, 0))
