"""Per-cluster profiles of every compared method: sizes, feature means and names.

One pass over the scored tracks sums each method's clusters (per partition, then combined);
the means are named by :func:`sonicatlas.summaries.profiles.name_clusters` as the run's own
clusters are. Written as ``summary/cluster_profiles_<method>``.
"""

from __future__ import annotations

import dask
import dask.dataframe as dd
import numpy as np
import pandas as pd

from sonicatlas.contract import CLUSTER, method_cluster
from sonicatlas.evaluate.compare import method_agreement
from sonicatlas.summaries.profiles import name_clusters
from sonicatlas.summaries.silhouette import SILHOUETTE, cluster_means

#: The name of a density method's noise (label -1) in its profiles.
NOISE = "Noise"


def _cluster_sums(part: pd.DataFrame, methods: tuple[str, ...], features: list[str]) -> dict:
    values = part[features].astype(np.float64)
    sums = {}
    for name in methods:
        groups = values.groupby(part[method_cluster(name)].to_numpy())
        table = groups.sum()
        table.insert(0, "size", groups.size())
        sums[name] = table
    return sums


def method_profiles(scored: dd.DataFrame, methods, features: tuple[str, ...],
                    scale_mean, scale_std) -> dict[str, pd.DataFrame]:
    """Each compared method's ``cluster_profiles`` table, exact over every scored track.

    Parameters
    ----------
    scored : dask.dataframe.DataFrame
        The scored tracks: the features in their own units and ``cluster_<method>``.
    methods : sequence of str
    features : tuple of str
    scale_mean, scale_std : sequence of float
        The run's scaler, to name clusters by their mean z-scores.

    Returns
    -------
    dict of str to pandas.DataFrame
        ``{method: table}``; a table has a row per cluster: cluster (-1: noise, named
        ``"Noise"``, last), name, size, share, and the mean of each feature.
    """
    methods, features = tuple(methods), list(features)
    parts = dask.compute(*(dask.delayed(_cluster_sums)(part, methods, features)
                           for part in scored[[*features, *map(method_cluster, methods)]]
                           .to_delayed()))
    mean, std = np.asarray(scale_mean, dtype=np.float64), np.asarray(scale_std, np.float64)
    tables = {}
    for name in methods:
        sums = pd.concat([p[name] for p in parts]).groupby(level=0).sum()
        clusters = sums[sums.index >= 0]
        means = clusters[features].to_numpy() / clusters["size"].to_numpy()[:, None]
        names = name_clusters((means - mean) / std, tuple(features))
        noise = sums[sums.index < 0]
        table = pd.DataFrame({CLUSTER: np.r_[clusters.index, noise.index].astype(np.int32),
                              "name": [*names, *[NOISE] * len(noise)],
                              "size": np.r_[clusters["size"], noise["size"]].astype(np.int64)})
        table["share"] = table["size"] / table["size"].sum()
        both = np.r_[means, noise[features].to_numpy() / noise["size"].to_numpy()[:, None]]
        for j, feature in enumerate(features):
            table[feature] = both[:, j]
        tables[name] = table
    return tables


def method_tables(scored: dd.DataFrame, scores: dd.DataFrame, model, methods,
                  silhouettes: pd.DataFrame | None = None) -> dict[str, pd.DataFrame]:
    """The ``summary/`` tables of the compared methods' labels, by name.

    Parameters
    ----------
    scored : dask.dataframe.DataFrame
        The scored tracks (features and ``cluster_<method>``).
    scores : dask.dataframe.DataFrame
        The persisted score columns, ``cluster_<method>`` among them.
    model : ClusterModel
        The run's model (its scaler names the clusters).
    methods : sequence of str
        The compared methods, kmeans included.
    silhouettes : pandas.DataFrame, optional
        ``summary/silhouette``: each profile gets its clusters' mean ``silhouette``.

    Returns
    -------
    dict of str to pandas.DataFrame
        ``method_agreement`` (:func:`sonicatlas.evaluate.compare.method_agreement`, exact over
        every track) and ``cluster_profiles_<method>`` (:func:`method_profiles`).
    """
    lengths = scores.map_partitions(len).compute().tolist()
    labels = {name: scores[method_cluster(name)].to_dask_array(lengths=lengths)
              for name in methods}
    tables = {"method_agreement": method_agreement(labels)}
    for name, table in method_profiles(scored, methods, model.features, model.scale_mean,
                                       model.scale_std).items():
        if silhouettes is not None:
            table[SILHOUETTE] = cluster_means(silhouettes, table[CLUSTER], name)
        tables[f"cluster_profiles_{name}"] = table
    return tables
