"""Per-cluster statistics, readable cluster names, representative tracks, a track sample."""

from __future__ import annotations

import numba
import numpy as np
import pandas as pd

from sonicatlas.contract import CLUSTER, DISTANCE, TRACK_ID
from sonicatlas.summaries.scan import Reduction, concat

# (feature, direction) -> words. A cluster is named by its most distinctive features.
FEATURE_WORDS = {
    ("danceability", 1): "Danceable", ("danceability", -1): "Undanceable",
    ("energy", 1): "High Energy", ("energy", -1): "Calm",
    ("loudness", 1): "Loud", ("loudness", -1): "Quiet",
    ("speechiness", 1): "Spoken Word", ("speechiness", -1): "Sung",
    ("acousticness", 1): "Acoustic", ("acousticness", -1): "Electric",
    ("instrumentalness", 1): "Instrumental", ("instrumentalness", -1): "Vocal",
    ("liveness", 1): "Live", ("liveness", -1): "Studio",
    ("valence", 1): "Upbeat", ("valence", -1): "Melancholic",
    ("tempo", 1): "Fast", ("tempo", -1): "Slow",
    ("duration_ms", 1): "Long", ("duration_ms", -1): "Short",
}

#: A centroid within this many standard deviations of the catalog mean on every feature has
#: nothing that stands out: it is named :data:`TYPICAL`, not by its largest tiny deviation.
TYPICAL_Z = 0.3
TYPICAL = "Typical"


def name_clusters(centers_z: np.ndarray, features: tuple[str, ...], words: int = 2,
                  overrides: dict[int, str] | None = None) -> list[str]:
    """A unique name per cluster from the features whose centroid z-scores stand out most.

    Parameters
    ----------
    centers_z : ndarray of shape (k, n_features)
        Centroids in z-score units (distance from the catalog mean in standard deviations).
    features : tuple of str
    words : int
        Features named per cluster; more are added until names are unique.
    overrides : dict, optional
        ``{cluster id: name}`` from the config; they win, and the others stay unique.

    Returns
    -------
    list of str, e.g. ``["High Energy · Danceable", "Acoustic · Calm", "Typical", ...]``.
        Names are relative to this catalog; a centroid with every ``|z| < TYPICAL_Z`` is
        "Typical".
    """
    centers_z = np.asarray(centers_z, dtype=float)
    ranked = np.argsort(-np.abs(centers_z), axis=1, kind="stable")
    overrides = overrides or {}

    def label(i: int, count: int) -> str:
        if i in overrides:
            return overrides[i]
        if np.all(np.abs(centers_z[i]) < TYPICAL_Z):
            return TYPICAL
        parts = [FEATURE_WORDS[(features[j], 1 if centers_z[i, j] >= 0 else -1)]
                 for j in ranked[i, :count]]
        return " · ".join(parts)

    names = [label(i, min(words, len(features))) for i in range(len(centers_z))]
    for count in range(words + 1, len(features) + 1):
        clashes = {n for n in names if names.count(n) > 1}
        if not clashes:
            break
        names = [label(i, count) if n in clashes else n for i, n in enumerate(names)]
    return number_duplicates(names)  # identical centroids: number them


def number_duplicates(names: list[str]) -> list[str]:
    """``names`` with every repeated name numbered: "Calm", "Calm" -> "Calm (1)", "Calm (2)"."""
    repeated = {n for n in names if names.count(n) > 1}
    seen: dict[str, int] = {}
    numbered = []
    for n in names:
        if n in repeated:
            seen[n] = seen.get(n, 0) + 1
            n = f"{n} ({seen[n]})"
        numbered.append(n)
    return numbered


def profile_columns(columns, features: tuple[str, ...]) -> list[str]:
    """The columns :func:`cluster_profiles` summarises: the features, popularity, explicit."""
    return [*features, *(c for c in ("popularity", "explicit") if c in columns)]


def cluster_profiles(stats: pd.DataFrame, features: tuple[str, ...], names: list[str],
                     catalog_mean: np.ndarray, catalog_std: np.ndarray,
                     sample: pd.DataFrame) -> pd.DataFrame:
    """Per cluster: size, share, and each feature's mean, std, quartiles and z-score.

    Parameters
    ----------
    stats : pandas.DataFrame
        :func:`column_stats_reduction`'s table over the scored tracks' :func:`profile_columns`.
    features : tuple of str
    names : list of str
        Cluster names, indexed by cluster id; every cluster gets a row, empty ones too.
    catalog_mean, catalog_std : ndarray
        Each feature's mean and standard deviation over the whole catalog (the scaler's).
    sample : pandas.DataFrame
        :func:`sample_reduction`'s rows; quartiles come from it (exact when it holds every
        track).

    Returns
    -------
    pandas.DataFrame
        ``f_mean``, ``f_std``, ``f_z`` exact over all tracks; ``f_q25``, ``f_median``,
        ``f_q75`` from the sample; ``popularity_mean`` and ``explicit_share`` when present.
    """
    extra = [c for c in ("popularity", "explicit") if c in {name for name, _ in stats.columns}]
    table = pd.DataFrame({CLUSTER: np.arange(len(names), dtype=np.int32), "name": names})
    size = stats[(features[0], "count")].fillna(0).to_numpy(dtype=np.int64)
    table["size"] = size
    table["share"] = size / max(size.sum(), 1)
    quartiles = sample.groupby(CLUSTER)[list(features)].quantile([0.25, 0.5, 0.75])
    for j, name in enumerate(features):
        mean = stats[(name, "mean")].to_numpy(dtype=float)
        table[f"{name}_mean"] = mean
        table[f"{name}_std"] = stats[(name, "std")].to_numpy(dtype=float)
        table[f"{name}_z"] = (mean - catalog_mean[j]) / catalog_std[j]
        for q, label in ((0.25, "q25"), (0.5, "median"), (0.75, "q75")):
            values = quartiles[name].xs(q, level=1) if len(quartiles) else pd.Series()
            table[f"{name}_{label}"] = values.reindex(range(len(names))).to_numpy(dtype=float)
    if "popularity" in extra:
        table["popularity_mean"] = stats[("popularity", "mean")].to_numpy(dtype=float)
    if "explicit" in extra:
        table["explicit_share"] = stats[("explicit", "mean")].to_numpy(dtype=float)
    return table


@numba.njit(cache=True, nogil=True)
def _moments_of(labels, values, k, out):  # pragma: no cover - numba
    """Count, mean and centred sum of squares of ``values`` per label ``0..k-1`` into ``out``
    (k x 3); NaN values and labels outside ``0..k-1`` are skipped."""
    sums = np.zeros(k)
    for i in range(len(labels)):
        c, x = labels[i], np.float64(values[i])
        if 0 <= c < k and not np.isnan(x):
            out[c, 0] += 1.0
            sums[c] += x
    for c in range(k):
        out[c, 1] = sums[c] / out[c, 0] if out[c, 0] > 0 else 0.0
    for i in range(len(labels)):
        c, x = labels[i], np.float64(values[i])
        if 0 <= c < k and not np.isnan(x):
            diff = x - out[c, 1]
            out[c, 2] += diff * diff


def _column_stats(frame: pd.DataFrame, k: int) -> np.ndarray:
    """Per cluster and column: non-missing count, mean and centred sum of squares.

    Two passes of a compiled loop per column (sums, then centred squares), cached on disk,
    rather than selecting each cluster's rows with numpy: k copies of every column.
    """
    labels = frame[CLUSTER].to_numpy()
    columns = [c for c in frame.columns if c != CLUSTER]
    out = np.zeros((len(columns), k, 3))
    for j, name in enumerate(columns):
        column = frame[name]
        values = (column.to_numpy(dtype=np.float64, na_value=np.nan)
                  if column.hasnans or not pd.api.types.is_numeric_dtype(column.dtype)
                  or isinstance(column.dtype, pd.api.extensions.ExtensionDtype)
                  else column.to_numpy())
        _moments_of(labels, values, k, out[j])
    return out.transpose(1, 2, 0).copy()  # k x (count, mean, m2) x columns


def _merge_column_stats(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    # Chan et al.'s pairwise update, per cluster and column
    na, ma, sa = a[:, 0], a[:, 1], a[:, 2]
    nb, mb, sb = b[:, 0], b[:, 1], b[:, 2]
    n = na + nb
    with np.errstate(invalid="ignore", divide="ignore"):
        delta = mb - ma
        mean = np.where(n > 0, ma + delta * np.where(n > 0, nb / n, 0.0), 0.0)
        m2 = sa + sb + np.where(n > 0, delta ** 2 * na * nb / n, 0.0)
    return np.stack([n, mean, m2], axis=1)


def _stats_table(total: np.ndarray, columns: list[str]) -> pd.DataFrame:
    count, mean, m2 = total[:, 0], total[:, 1], total[:, 2]
    with np.errstate(invalid="ignore", divide="ignore"):
        std = np.where(count > 1, np.sqrt(m2 / (count - 1)), np.nan)
    mean = np.where(count > 0, mean, np.nan)
    table = {}
    for j, name in enumerate(columns):
        table[(name, "count")] = count[:, j].astype(np.int64)
        table[(name, "mean")], table[(name, "std")] = mean[:, j], std[:, j]
    return pd.DataFrame(table, index=pd.RangeIndex(len(total), name=CLUSTER))


def column_stats_reduction(columns: list[str], k: int) -> Reduction:
    """Count, mean and standard deviation (``ddof=1``) of ``columns`` per cluster ``0..k-1``.

    What ``frame.groupby("cluster")[columns].agg(["count", "mean", "std"])`` gives (missing
    values skipped; NaN for empty clusters), from per-partition centred sums merged in
    partition order: in float64 whatever the columns' dtype, and no cancellation however far
    the values sit from zero.
    """
    columns = list(columns)
    return Reduction(partial=lambda part, _: _column_stats(part[[CLUSTER, *columns]], k),
                     combine=_merge_column_stats,
                     finish=lambda total: _stats_table(total, columns))


def _sample_rows(frame: pd.DataFrame, number: int, fraction: float, seed: int
                 ) -> pd.DataFrame:
    keep = np.random.default_rng([seed, number]).random(len(frame)) < fraction
    return frame[keep]


def sample_reduction(columns: list[str], rows: int, total: int, seed: int) -> Reduction:
    """About ``rows`` of ``total`` tracks drawn uniformly and reproducibly (all when fewer)."""
    fraction, columns = min(1.0, rows / max(total, 1)), list(columns)
    return Reduction(partial=lambda part, i: _sample_rows(part[columns], i, fraction, seed),
                     combine=concat)


@numba.njit(cache=True, nogil=True)
def _thresholds(labels, distance, low, n_labels, per_cluster):  # pragma: no cover - numba
    """Per label ``low + i``: the ``per_cluster``-th smallest distance, ``inf`` when fewer.

    One pass with a max-heap of the smallest distances per label (NaN never enters).
    """
    heap = np.empty((n_labels, per_cluster))
    size = np.zeros(n_labels, dtype=np.int64)
    for r in range(labels.shape[0]):
        value = distance[r]
        if np.isnan(value):
            continue
        h, label = heap[labels[r] - low], labels[r] - low
        if size[label] < per_cluster:  # push, sift up
            i = size[label]
            size[label] += 1
            while i > 0 and h[(i - 1) // 2] < value:
                h[i] = h[(i - 1) // 2]
                i = (i - 1) // 2
            h[i] = value
        elif value < h[0]:  # replace the largest, sift down
            i = 0
            while True:
                child = 2 * i + 1
                if child >= per_cluster:
                    break
                if child + 1 < per_cluster and h[child + 1] > h[child]:
                    child += 1
                if h[child] <= value:
                    break
                h[i] = h[child]
                i = child
            h[i] = value
    out = np.full(n_labels, np.inf)
    for label in range(n_labels):
        if size[label] == per_cluster:
            out[label] = heap[label, 0]
    return out


def _nearest_per_cluster(frame: pd.DataFrame, per_cluster: int) -> pd.DataFrame:
    """The ``per_cluster`` rows nearest each centroid, ties broken by track_id.

    Rather than sorting a whole partition by (cluster, distance, id), one pass finds each
    cluster's ``per_cluster``-th smallest distance (:func:`_thresholds`, a heap per cluster),
    every row at or under it is kept (ties too), and only those few rows are sorted.
    """
    labels = frame[CLUSTER].to_numpy(dtype=np.int64)
    distance = frame[DISTANCE].to_numpy(dtype=np.float64)
    if len(labels) == 0 or per_cluster < 1:
        return frame.iloc[:0]
    low = int(labels.min())
    threshold = _thresholds(labels, distance, low, int(labels.max()) - low + 1, per_cluster)
    mine = threshold[labels - low]
    few = frame[(distance <= mine) | np.isinf(mine)]
    ordered = few.sort_values([CLUSTER, DISTANCE, TRACK_ID], kind="stable")
    return ordered.groupby(CLUSTER, sort=False).head(per_cluster)


def _distinct_titles(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` (sorted by cluster and distance) without a title its artist already has in
    the cluster: the same song on an album and a compilation is one representative."""
    if not {"track_name", "artist_name"} <= set(frame.columns):
        return frame
    title = frame["track_name"].astype("string").str.strip().str.casefold()
    artist = frame["artist_name"].astype("string").str.strip().str.casefold()
    repeated = pd.DataFrame({CLUSTER: frame[CLUSTER].to_numpy(), "t": title.to_numpy(),
                             "a": artist.to_numpy()}).duplicated()
    known = title.notna().to_numpy() & artist.notna().to_numpy()
    return frame[~(repeated.to_numpy() & known)]


def representative_reduction(per_cluster: int, carry: tuple[str, ...]) -> Reduction:
    """The ``per_cluster`` tracks nearest each centroid, no title twice by the same artist:
    each partition keeps only its own nearest (a few more than needed, for the repeats)."""
    columns = [TRACK_ID, CLUSTER, DISTANCE,
               *(c for c in ("track_name", "artist_name", "genre") if c in carry)]
    pool = per_cluster * 4 if {"track_name", "artist_name"} <= set(carry) else per_cluster

    def nearest(frame: pd.DataFrame) -> pd.DataFrame:
        return _distinct_titles(_nearest_per_cluster(frame, pool))

    def finish(found: pd.DataFrame) -> pd.DataFrame:
        found = found.groupby(CLUSTER, sort=False).head(per_cluster).reset_index(drop=True)
        found.insert(1, "rank", found.groupby(CLUSTER).cumcount() + 1)
        return found

    return Reduction(partial=lambda part, _: nearest(part[columns]),
                     combine=lambda a, b: nearest(concat(a, b)), finish=finish)


def feature_correlation(covariance: np.ndarray, features: tuple[str, ...]) -> pd.DataFrame:
    """Pearson correlation of the features over all tracks, from a covariance matrix."""
    scale = np.sqrt(np.diag(covariance))
    table = pd.DataFrame(covariance / np.outer(scale, scale), columns=list(features))
    table.insert(0, "feature", list(features))
    return table
