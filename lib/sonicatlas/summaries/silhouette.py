"""Each sampled track's silhouette, under the run's clusters and under each compared method.

The silhouette is quadratic in the rows, so it is computed on the client over at most
``rows`` tracks of ``summary/track_sample`` (itself a reproducible uniform sample of every
track): their features as the run's float32 z-scores (the numbers ``query/`` holds), scored
by scikit-learn's ``silhouette_samples``. A density method's noise (-1) has no silhouette; a
labelling with fewer than two clusters on the sample has none at all. Written as
``summary/silhouette``; each cluster's mean becomes the ``silhouette`` column of its
profiles.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import silhouette_samples

from sonicatlas.contract import CLUSTER, TRACK_ID, method_cluster, method_silhouette

SILHOUETTE = "silhouette"


def silhouette_rows(sample: pd.DataFrame, rows: int, seed: int) -> pd.DataFrame:
    """At most ``rows`` of the track sample, drawn reproducibly, in the sample's order."""
    if len(sample) <= rows:
        return sample
    keep = np.random.default_rng(seed).choice(len(sample), size=rows, replace=False)
    return sample.iloc[np.sort(keep)]


def labelled_silhouettes(z: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """scikit-learn's silhouette of each row; NaN for noise (-1) and when fewer than two
    clusters (or too few rows) are left."""
    values = np.full(len(labels), np.nan)
    kept = labels >= 0
    n_labels = len(np.unique(labels[kept]))
    if 2 <= n_labels <= int(kept.sum()) - 1:
        values[kept] = silhouette_samples(z[kept], labels[kept])
    return values


def silhouette_table(sample: pd.DataFrame, features, scale_mean, scale_std, methods=(),
                     rows: int = 10_000, seed: int = 0) -> pd.DataFrame:
    """``summary/silhouette``: a row per sampled track with its silhouette per labelling.

    Parameters
    ----------
    sample : pandas.DataFrame
        ``summary/track_sample``: ``track_id``, ``cluster``, the features in their own units
        and ``cluster_<method>`` for each method in ``methods``.
    features : sequence of str
        The model's features, in its order.
    scale_mean, scale_std : sequence of float
        The run's scaler.
    methods : sequence of str
        Compared methods whose labels the sample carries.
    rows : int
        Most tracks scored (the cost grows with their square).
    seed : int
        Seed of the draw of those tracks from the sample.

    Returns
    -------
    pandas.DataFrame
        ``track_id``, ``cluster``, ``silhouette``, then ``cluster_<method>`` and
        ``silhouette_<method>`` per method.
    """
    chosen = silhouette_rows(sample, rows, seed).reset_index(drop=True)
    # the z-scores exactly as query/ stores them: float64 arithmetic, rounded to float32
    z = ((chosen[list(features)].to_numpy(dtype=np.float64) - np.asarray(scale_mean))
         / np.asarray(scale_std)).astype(np.float32).astype(np.float64)
    table = pd.DataFrame({TRACK_ID: chosen[TRACK_ID].to_numpy(),
                          CLUSTER: chosen[CLUSTER].to_numpy(dtype=np.int32)})
    table[SILHOUETTE] = labelled_silhouettes(z, table[CLUSTER].to_numpy())
    for name in methods:
        labels = chosen[method_cluster(name)].to_numpy(dtype=np.int32)
        table[method_cluster(name)] = labels
        table[method_silhouette(name)] = labelled_silhouettes(z, labels)
    return table


def cluster_means(table: pd.DataFrame, clusters, method: str | None = None) -> np.ndarray:
    """Mean silhouette of each cluster in ``clusters`` (NaN where the sample has none of its
    tracks, and for noise), under the run's clusters or ``method``'s."""
    label = CLUSTER if method is None else method_cluster(method)
    value = SILHOUETTE if method is None else method_silhouette(method)
    if label not in table:
        return np.full(len(clusters), np.nan)
    means = table.groupby(label)[value].mean()
    return means.reindex(np.asarray(clusters)).to_numpy(dtype=np.float64)
