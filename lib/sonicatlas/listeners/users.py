"""Per-user features from a listening log resolved against a clustered track catalog.

Everything stays distributed; the plan for ``user_features`` is

1. **resolve** each listen where it is read: its track's features, cluster and artist code
   come from a :class:`~sonicatlas.listeners.lookup.TrackLookup` that every worker holds
   (made once from the catalog and shared by every task), so the log is never shuffled.
   Listens already checked by :func:`~sonicatlas.listeners.checks.check_listens` with the same
   lookup carry their track's row and are not looked up again.
2. **pre-aggregate** each partition per user with ``np.bincount`` on user codes: play
   weights, weighted feature sums and per-cluster / per-UTC-hour / per-weekday weights (the
   one-hot sums, without building one-hot columns), the last play; plus the distinct
   (user, UTC date) pairs and the (user, artist code) weights.
3. **shuffle** each of those three partial frames on ``user_id`` into ``split_out``
   partitions. This is what ``groupby(..., split_out=n)`` does; done by hand, the three share
   one hash partitioning, so every user's rows meet in the same partition number.
4. **finish** per partition (blockwise, no further shuffle): sum the partials per user, count
   distinct dates, sum the (user, artist) weights and take their entropy, divide by ``plays``.

Cost: only the partials cross the network, at most one row per (user, partition) for the
sums, per (user, date, partition) for the days and per (user, artist, partition) for artists.
The artist one is the largest: a user with wide taste contributes one row per artist per
partition (three narrow columns, the artist an int32 code). Skip it by giving a catalog
without ``artist_name``.

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


def _sum_columns(n_clusters: int, features: tuple[str, ...]) -> list[str]:
    # Per-user partial sums; the weighted sums take their final names once divided by plays.
    return ["plays", *(f"mean_{f}" for f in features),
            *(f"share_cluster_{c}" for c in range(n_clusters)),
            *(f"hour_{h}" for h in range(24)), *(f"weekday_{d}" for d in range(7))]


# -- per joined partition ---------------------------------------------------------------------

def _timestamps_us(ts: pd.Series) -> np.ndarray:
    return ts.dt.tz_localize(None).to_numpy(dtype="datetime64[us]").view(np.int64)


def _user_sums(frame: pd.DataFrame, n_clusters: int, features: tuple[str, ...]) -> pd.DataFrame:
    codes, users = pd.factorize(frame[USER_ID])
    n = len(users)
    w = frame[_WEIGHT].to_numpy(dtype=np.float64)
    us = _timestamps_us(frame[TS])
    hour = (us // _US_PER_HOUR) % 24
    weekday = (us // _US_PER_DAY + 3) % 7  # 1970-01-01 was a Thursday (Monday = 0)

    def per_user(values: np.ndarray) -> np.ndarray:
        return np.bincount(codes, weights=values, minlength=n)

    def one_hot(category: np.ndarray, width: int) -> np.ndarray:
        # Weight of each (user, category): the sum of one-hot columns, as one bincount.
        return np.bincount(codes * width + category, weights=w,
                           minlength=n * width).reshape(n, width)

    columns = {USER_ID: pd.array(users, dtype="string"), "plays": per_user(w)}
    for f in features:
        columns[f"mean_{f}"] = per_user(w * frame[f].to_numpy(dtype=np.float64))
    cluster = frame[CLUSTER].to_numpy(dtype=np.float64, na_value=np.nan)
    # Unassigned tracks (noise -1, missing, out of range) count in plays but in no share.
    assigned = (cluster >= 0) & (cluster < n_clusters)
    by_cluster = np.bincount(codes[assigned] * n_clusters + cluster[assigned].astype(np.int64),
                             weights=w[assigned], minlength=n * n_clusters)
    columns.update({f"share_cluster_{c}": col
                    for c, col in enumerate(by_cluster.reshape(n, n_clusters).T)})
    columns.update({f"hour_{h}": col for h, col in enumerate(one_hot(hour, 24).T)})
    columns.update({f"weekday_{d}": col for d, col in enumerate(one_hot(weekday, 7).T)})
    last = np.full(n, np.iinfo(np.int64).min)
    np.maximum.at(last, codes, us)
    columns[_LAST] = last
    return pd.DataFrame(columns)


def _pairs(users: pd.Series, values: np.ndarray, weights: np.ndarray | None = None
           ) -> pd.DataFrame:
    """Distinct (user, integer value) pairs, with their summed ``weights`` if given.

    The pairs are found as one int64 key each (user code x span + value), not by hashing
    strings: ~3x faster than a groupby on (user_id, value).
    """
    codes, names = pd.factorize(users)
    low = values.min() if len(values) else 0
    span = np.int64(values.max() - low + 1) if len(values) else np.int64(1)
    keys = codes.astype(np.int64) * span + (values - low)
    unique, inverse = np.unique(keys, return_inverse=True)
    out = {USER_ID: names.take(unique // span).array, "_value": unique % span + low}
    if weights is not None:
        out[_WEIGHT] = np.bincount(inverse, weights=weights, minlength=len(unique))
    return pd.DataFrame(out)


def _user_days(frame: pd.DataFrame) -> pd.DataFrame:
    day = _timestamps_us(frame[TS]) // _US_PER_DAY
    return _pairs(frame[USER_ID], day).rename(columns={"_value": _DAY})


def _user_artists(frame: pd.DataFrame) -> pd.DataFrame:
    # Artists as the lookup's integer codes (-1: none), paired as numbers, not names.
    known = frame[frame[ARTIST].to_numpy() >= 0]
    return _pairs(known[USER_ID], known[ARTIST].to_numpy(dtype=np.int64),
                  known[_WEIGHT].to_numpy()).rename(columns={"_value": ARTIST})


# -- per user partition (after the shuffle) ---------------------------------------------------

def _entropy(shares: np.ndarray, axis: int = -1) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(shares > 0, -shares * np.log(shares), 0.0)
    return terms.sum(axis=axis)


def _finish(sums: pd.DataFrame, days: pd.DataFrame, artists: pd.DataFrame | None = None, *,
            n_clusters: int, features: tuple[str, ...]) -> pd.DataFrame:
    names = _sum_columns(n_clusters, features)
    totals = sums.groupby(USER_ID, sort=False).agg({**dict.fromkeys(names, "sum"),
                                                    _LAST: "max"})
    out = totals[names].div(totals["plays"], axis=0)
    out["plays"] = totals["plays"]
    distinct = _pairs(days[USER_ID], days[_DAY].to_numpy(dtype=np.int64))
    out["active_days"] = distinct.groupby(USER_ID, sort=False).size() \
        .reindex(out.index).astype(np.float64)
    out[_LAST] = totals[_LAST]
    clusters = out[[f"share_cluster_{c}" for c in range(n_clusters)]].to_numpy()
    assigned = clusters.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        out["cluster_entropy"] = np.where(assigned[:, 0] > 0, _entropy(clusters / assigned),
                                          np.nan)
    if artists is None:
        out["artist_entropy"] = np.nan
    else:
        per_artist = _pairs(artists[USER_ID], artists[ARTIST].to_numpy(dtype=np.int64),
                            artists[_WEIGHT].to_numpy(dtype=np.float64))
        codes, names = pd.factorize(per_artist[USER_ID])
        w = per_artist[_WEIGHT].to_numpy()
        share = w / np.bincount(codes, weights=w, minlength=len(names))[codes]
        entropy = np.bincount(codes, weights=-share * np.log(share), minlength=len(names))
        out["artist_entropy"] = pd.Series(entropy, index=names).reindex(out.index)
    out["recency_days"] = np.nan  # filled in once ``now`` is known
    return out[[*feature_columns(n_clusters, features), _LAST]]


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

    sums = by_user(joined.map_partitions(
        _user_sums, n_clusters, features,
        meta=_user_sums(joined._meta, n_clusters, features)))
    days = by_user(joined.map_partitions(_user_days, meta=_user_days(joined._meta)))
    parts = [sums, days]
    if has_artist:
        parts.append(by_user(joined.map_partitions(_user_artists,
                                                   meta=_user_artists(joined._meta))))
    # Same key, same npartitions, same hash: partition i of each holds the same users.
    meta = _finish(*(p._meta for p in parts), n_clusters=n_clusters, features=features)
    out = dd.map_partitions(_finish, *parts, n_clusters=n_clusters, features=features,
                            meta=meta, align_dataframes=False)

    if now is None:
        reference = out[_LAST].max()
    else:
        reference = _timestamps_us(pd.Series([utc_timestamp(now)]))[0]
    # Blockwise with the scalar broadcast: assigning ``reference - out[_LAST]`` as a column
    # makes dask align the two by a shuffle on the (unknown-division) index.
    return out.map_partitions(_recency, reference, meta=_recency(meta, 0))
