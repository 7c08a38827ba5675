"""Per-cluster statistics and readable cluster names."""

from __future__ import annotations

import dask.dataframe as dd
import numpy as np
import pandas as pd

from .model import CLUSTER

# (feature, direction) -> words. A cluster is named by its most distinctive features.
_WORDS = {
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


def name_clusters(centers_z: np.ndarray, features: tuple[str, ...], words: int = 2) -> list[str]:
    """A unique name per cluster from the features whose centroid z-scores stand out most.

    Parameters
    ----------
    centers_z : ndarray of shape (k, n_features)
        Centroids in z-score units (distance from the catalog mean in standard deviations).
    features : tuple of str
    words : int
        Features named per cluster; more are added until names are unique.

    Returns
    -------
    list of str, e.g. ``["High Energy · Danceable", "Acoustic · Calm", ...]``.
    """
    centers_z = np.asarray(centers_z, dtype=float)
    ranked = np.argsort(-np.abs(centers_z), axis=1, kind="stable")

    def label(i: int, count: int) -> str:
        parts = [_WORDS[(features[j], 1 if centers_z[i, j] >= 0 else -1)]
                 for j in ranked[i, :count]]
        return " · ".join(parts)

    names = [label(i, min(words, len(features))) for i in range(len(centers_z))]
    for count in range(words + 1, len(features) + 1):
        clashes = {n for n in names if names.count(n) > 1}
        if not clashes:
            break
        names = [label(i, count) if n in clashes else n for i, n in enumerate(names)]
    repeated = {n for n in names if names.count(n) > 1}  # identical centroids: number them
    seen: dict[str, int] = {}
    for i, n in enumerate(names):
        if n in repeated:
            seen[n] = seen.get(n, 0) + 1
            names[i] = f"{n} ({seen[n]})"
    return names


def cluster_profiles(scored: dd.DataFrame, features: tuple[str, ...], names: list[str]
                     ) -> pd.DataFrame:
    """Size, share, and mean and std of every feature per cluster, in the features' units.

    Parameters
    ----------
    scored : dask.dataframe.DataFrame
        Accepted tracks with their ``cluster`` and the feature columns.
    features : tuple of str
    names : list of str
        Cluster names, indexed by cluster id; every cluster gets a row, empty ones too.
    """
    stats = scored.groupby(CLUSTER)[list(features)].agg(["count", "mean", "std"]).compute()
    stats = stats.reindex(range(len(names)))
    table = pd.DataFrame({CLUSTER: np.arange(len(names), dtype=np.int32), "name": names})
    size = stats[(features[0], "count")].fillna(0).to_numpy(dtype=np.int64)
    table["size"] = size
    table["share"] = size / max(size.sum(), 1)
    for name in features:
        table[f"{name}_mean"] = stats[(name, "mean")].to_numpy(dtype=float)
        table[f"{name}_std"] = stats[(name, "std")].to_numpy(dtype=float)
    return table
