"""Per-user features from a listening log resolved against a clustered track catalog.

Everything stays distributed; the plan for ``user_features`` is

1. **resolve** each listen where it is read: its track's features, cluster and artist code
   come from a :class:`~sonicatlas.listeners.lookup.TrackLookup` that every worker holds
   (made once from the catalog and shared by every task), so the log is never shuffled.
   Listens already checked by :func:`~sonicatlas.listeners.checks.check_listens` with the same
   lookup carry their track's row and are not looked up again.
2. **pre-aggregate** each partition per user with ``np.bincount`` on user codes: play
   weights, weighted feature sums and the last play (one row per user); and the play weights
   of each distinct (user, UTC date, UTC hour, artist code, cluster) of the partition (one row
   per such event, five narrow columns), from which every share and count is summed later.
3. **shuffle** both partial frames on ``user_id`` into ``split_out`` partitions. This is what
   ``groupby(..., split_out=n)`` does; done by hand, the two share one hash partitioning, so
   every user's rows meet in the same partition number.
4. **finish** per partition (blockwise, no further shuffle): sum the partials per user; from
   the events, count distinct dates and sum the weights per (user, hour), (user, weekday of
   the date), (user, cluster) and (user, artist), take the entropies, divide by ``plays``.

Cost: only the partials cross the network: at most one row per (user, partition) for the
sums (13 numbers) and one per (user, date, hour, artist, cluster, partition) for the events
(a few narrow integers and a weight). A partition of a log holds most of its users once or
twice, so the partials have nearly as many rows as the log: what keeps them small is their
width, so the per-user shares are never shuffled as dense rows of 24 hours, 7 weekdays and
k clusters, mostly zeros.

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

from sonicatlas.contract import ARTIST, CLUSTER, FEATURES, REASON, TRACK_ID, TRACK_ROW, TS, USER_ID
from sonicatlas.listeners.checks import to_utc, utc_timestamp
from sonicatlas.listeners.lookup import SharedLookup, TrackLookup, track_lookup

__all__ = ["feature_columns", "user_features"]

_WEIGHT = "_w"
_LAST = "_last"
_DAY = "_day"
_HOUR = "_hour"
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


def _sum_columns(features: tuple[str, ...]) -> list[str]:
    # Per-user partial sums; the weighted sums take their final names once divided by plays.
    return ["plays", *(f"mean_{f}" for f in features)]


# -- per joined partition ---------------------------------------------------------------------

def _timestamps_us(ts: pd.Series) -> np.ndarray:
    return ts.dt.tz_localize(None).to_numpy(dtype="datetime64[us]").view(np.int64)


def _user_sums(frame: pd.DataFrame, features: tuple[str, ...]) -> pd.DataFrame:
    codes, users = pd.factorize(frame[USER_ID])
    n = len(users)
    w = frame[_WEIGHT].to_numpy(dtype=np.float64)

    def per_user(values: np.ndarray) -> np.ndarray:
        return np.bincount(codes, weights=values, minlength=n)

    columns = {USER_ID: pd.array(users, dtype="string"), "plays": per_user(w)}
    for f in features:
        columns[f"mean_{f}"] = per_user(w * frame[f].to_numpy(dtype=np.float64))
    last = np.full(n, np.iinfo(np.int64).min)
    np.maximum.at(last, codes, _timestamps_us(frame[TS]))
    columns[_LAST] = last
    return pd.DataFrame(columns)


#: the integer columns of an event, and their dtypes
_EVENT = {_DAY: np.int32, _HOUR: np.int8, ARTIST: np.int32, CLUSTER: np.int16}


def _user_events(frame: pd.DataFrame, n_clusters: int) -> pd.DataFrame:
    """The summed play weight of each distinct (user, date, hour, artist, cluster).

    Artist -1 is none (or no artists in the catalog); cluster -1 is unassigned (noise, missing
    or outside ``0..n_clusters-1``): such plays count in ``plays`` and in no share.
    """
    us = _timestamps_us(frame[TS])
    cluster = frame[CLUSTER].to_numpy(dtype=np.float64, na_value=np.nan)
    assigned = (cluster >= 0) & (cluster < n_clusters)
    values = {_DAY: us // _US_PER_DAY, _HOUR: (us // _US_PER_HOUR) % 24,
              ARTIST: (frame[ARTIST].to_numpy(dtype=np.int64) if ARTIST in frame.columns
                       else np.full(len(frame), -1, dtype=np.int64)),
              CLUSTER: np.where(assigned, np.nan_to_num(cluster, nan=-1), -1).astype(np.int64)}
    codes, users = pd.factorize(frame[USER_ID])
    unique, inverse = _distinct_rows([codes.astype(np.int64), *values.values()])
    out = {USER_ID: users.take(unique[0]).array}
    for (name, dtype), column in zip(_EVENT.items(), unique[1:], strict=True):
        out[name] = column.astype(dtype)
    out[_WEIGHT] = np.bincount(inverse, weights=frame[_WEIGHT].to_numpy(dtype=np.float64),
                               minlength=len(unique[0]))
    return pd.DataFrame(out)


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


# -- per user partition (after the shuffle) ---------------------------------------------------

def _entropy(shares: np.ndarray, axis: int = -1) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(shares > 0, -shares * np.log(shares), 0.0)
    return terms.sum(axis=axis)


def _finish(sums: pd.DataFrame, events: pd.DataFrame, *, n_clusters: int,
            features: tuple[str, ...], has_artist: bool) -> pd.DataFrame:
    # One hash of the users of both frames gives every per-user sum as a bincount.
    codes, users = pd.factorize(pd.concat([sums[USER_ID], events[USER_ID]],
                                          ignore_index=True))
    n = len(users)
    at, codes = codes[:len(sums)], codes[len(sums):]

    def total(values: np.ndarray) -> np.ndarray:
        return np.bincount(at, weights=values, minlength=n)

    plays = total(sums["plays"].to_numpy(dtype=np.float64))
    out = {f"mean_{f}": total(sums[f"mean_{f}"].to_numpy(dtype=np.float64)) / plays
           for f in features}
    last = np.full(n, np.iinfo(np.int64).min)
    np.maximum.at(last, at, sums[_LAST].to_numpy(dtype=np.int64))
    w = events[_WEIGHT].to_numpy(dtype=np.float64)
    day = events[_DAY].to_numpy(dtype=np.int64)

    def shares(category: np.ndarray, width: int, keep=slice(None)) -> np.ndarray:
        weights = np.bincount(codes[keep] * width + category[keep], weights=w[keep],
                              minlength=n * width)
        return weights.reshape(n, width) / plays[:, None]

    cluster = events[CLUSTER].to_numpy(dtype=np.int64)
    by_cluster = shares(np.maximum(cluster, 0), n_clusters, cluster >= 0)
    by_hour = shares(events[_HOUR].to_numpy(dtype=np.int64), 24)
    by_weekday = shares((day + 3) % 7, 7)  # 1970-01-01 was a Thursday (Monday = 0)
    out.update({f"share_cluster_{c}": by_cluster[:, c] for c in range(n_clusters)})
    out.update({f"hour_{h}": by_hour[:, h] for h in range(24)})
    out.update({f"weekday_{d}": by_weekday[:, d] for d in range(7)})
    out["plays"] = plays
    user_days, _ = _distinct_rows([codes.astype(np.int64), day])
    out["active_days"] = np.bincount(user_days[0], minlength=n).astype(np.float64)
    assigned = by_cluster.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        out["cluster_entropy"] = np.where(assigned[:, 0] > 0, _entropy(by_cluster / assigned),
                                          np.nan)
    out["artist_entropy"] = np.full(n, np.nan)
    artist = events[ARTIST].to_numpy(dtype=np.int64)
    known = artist >= 0
    if has_artist and known.any():
        (user, _), inverse = _distinct_rows([codes[known].astype(np.int64), artist[known]])
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
                         index=pd.Index(users, name=USER_ID, dtype=sums[USER_ID].dtype))
    frame[_LAST] = last
    return frame


def _recency(frame: pd.DataFrame, reference: int) -> pd.DataFrame:
    out = frame.drop(columns=_LAST)
    out["recency_days"] = (reference - frame[_LAST].to_numpy()) / _US_PER_DAY
    return out


# -- the pipeline -----------------------------------------------------------------------------

def _resolved_log(frame: pd.DataFrame, lookup: TrackLookup, weight: str | None,
                  resolved: bool) -> pd.DataFrame:
    """A partition's accepted plays of catalog tracks, each with its track's features, cluster
    and artist code from ``lookup``: what a join with the catalog gave, with no shuffle."""
    if REASON in frame.columns:
        frame = frame[frame[REASON].isna().to_numpy()]
    w = (frame[weight].to_numpy(dtype=np.float64) if weight
         else np.ones(len(frame)))  # with ms_played every row is one play
    ts = to_utc(frame[TS])
    rows = (frame[TRACK_ROW].to_numpy(dtype=np.int64) if resolved
            else lookup.find(frame[TRACK_ID].astype("string")))
    user = frame[USER_ID].astype("string")
    keep = (rows >= 0) & user.notna().to_numpy() & ts.notna().to_numpy()
    rows = rows[keep]
    out = pd.DataFrame({USER_ID: user[keep].array, TS: ts[keep].array, _WEIGHT: w[keep]})
    values = lookup.features[rows]
    for i, name in enumerate(lookup.feature_names):
        out[name] = values[:, i]
    out[CLUSTER] = lookup.cluster[rows]
    if lookup.artist is not None:
        out[ARTIST] = lookup.artist[rows]
    return out


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
    has_artist = lookup.has_artist
    joined = listens.map_partitions(_resolved_log, lookup.data, weight, resolved,
                                    meta=_resolved_log(listens._meta, lookup.empty(), weight,
                                                       resolved))
    split_out = split_out or max(1, joined.npartitions // 4)

    def by_user(partial: dd.DataFrame) -> dd.DataFrame:
        return partial.shuffle(on=USER_ID, npartitions=split_out)

    sums = by_user(joined.map_partitions(_user_sums, features,
                                         meta=_user_sums(joined._meta, features)))
    events = by_user(joined.map_partitions(_user_events, n_clusters,
                                           meta=_user_events(joined._meta, n_clusters)))
    # Same key, same npartitions, same hash: partition i of each holds the same users.
    options = {"n_clusters": n_clusters, "features": features, "has_artist": has_artist}
    meta = _finish(sums._meta, events._meta, **options)
    out = dd.map_partitions(_finish, sums, events, **options, meta=meta,
                            align_dataframes=False)

    if now is None:
        reference = out[_LAST].max()
    else:
        reference = _timestamps_us(pd.Series([utc_timestamp(now)]))[0]
    # Blockwise with the scalar broadcast: assigning ``reference - out[_LAST]`` as a column
    # makes dask align the two by a shuffle on the (unknown-division) index.
    return out.map_partitions(_recency, reference, meta=_recency(meta, 0))
