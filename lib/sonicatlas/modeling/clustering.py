"""The clustering step of both jobs: KMeans at a given or chosen k, then the configured
algorithm and the methods to compare, all on the same scaled matrix."""

from __future__ import annotations

from dataclasses import dataclass, field

import dask.array as da
import numpy as np
import pandas as pd

from sonicatlas.config import ClusteringConfig
from sonicatlas.estimators.kmeans import KMeans
from sonicatlas.evaluate import compare
from sonicatlas.evaluate.sweep import sweep_k
from sonicatlas.modeling.engines import Engine, engine_named


@dataclass
class Clustering:
    """What the step produced: the KMeans fit, the final labeler and centers, the tables."""

    kmeans: KMeans
    k: int
    centers: np.ndarray
    #: fitted method that labels tracks, or None when KMeans' nearest centroid does
    labeler: object | None = None
    #: ``{method: fitted estimator}`` of every compared method (kmeans included), or empty
    methods: dict = field(default_factory=dict)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    manifest: dict = field(default_factory=dict)


def fit_clusters(scaled: da.Array, config: ClusteringConfig, stage, echo,
                 engine: Engine | None = None, columns: tuple[str, ...] = ()) -> Clustering:
    """Fit KMeans (sweeping k when ``k: auto``), then the algorithm and comparisons.

    ``engine`` fits the run's KMeans (default: the one ``config.engine`` names); the sweep,
    the algorithm and the comparisons use the job's estimators on the same matrix. When
    agglomerative clustering runs, the top of its merge tree becomes the ``dendrogram`` and
    ``dendrogram_leaves`` tables (leaf centroids named by ``columns``).
    """
    seed = config.seed
    engine = engine or engine_named(config.engine)
    if config.k == "auto":
        with stage("choose k"):
            sweep = sweep_k(scaled, config.sweep, config.kmeans, seed, echo)
            kmeans = engine.refit(sweep.models[sweep.k], scaled, config.kmeans, seed)
            echo(f"Chose k={sweep.k}: {sweep.why} (elbow of the cost at k={sweep.elbow_k})")
        result = Clustering(kmeans, sweep.k, kmeans.cluster_centers_,
                            tables={"k_sweep": sweep.table},
                            manifest={"k_sweep": {"chosen": sweep.k, "elbow": sweep.elbow_k,
                                                  "supported": sweep.supported,
                                                  "why": sweep.why}})
    else:
        with stage("kmeans"):
            kmeans = engine.kmeans(config.k, config.kmeans, seed).fit(scaled)
        result = Clustering(kmeans, config.k, kmeans.cluster_centers_)
    result.manifest["algorithm"] = config.algorithm
    result.manifest["engine"] = engine.name

    fitted = {}
    if config.algorithm != "kmeans":
        with stage(config.algorithm):
            method, labels = compare.fit_method(config.algorithm, scaled, result.k,
                                                config.params, seed)
            result.labeler, result.centers = method, compare.cluster_means(scaled, labels)
            fitted[config.algorithm] = (method, labels)
    if config.compare:
        with stage("compare methods"):
            fitted["kmeans"] = (kmeans, kmeans.predict(scaled).astype(np.int64).persist())
            names = list(dict.fromkeys(["kmeans", *config.compare]))
            table, info, result.methods = compare.compare_methods(
                scaled, names, result.k, config.compare_params, fitted["kmeans"][1],
                config.sweep.silhouette_sample_size, config.sweep.silhouette_samples, seed,
                echo, fitted_already=fitted)
            result.tables["method_comparison"] = table
            result.manifest["methods"] = info
    hierarchical = result.methods.get("agglomerative") or (
        result.labeler if config.algorithm == "agglomerative" else None)
    if hierarchical is not None and hasattr(hierarchical, "tree_top_"):
        merges, leaves = dendrogram_tables(hierarchical.tree_top_, tuple(columns))
        result.tables.update(dendrogram=merges, dendrogram_leaves=leaves)
        result.manifest["dendrogram"] = {
            "method": "agglomerative", "linkage": hierarchical.linkage, "leaves": len(leaves),
            "k": hierarchical.n_clusters_, "sample_size": hierarchical.sample_size_}
    return result


def dendrogram_tables(top, features: tuple[str, ...]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``summary/dendrogram`` and ``summary/dendrogram_leaves`` from the top of a merge tree
    (:class:`~sonicatlas.estimators.tree.TreeTop`).

    Returns
    -------
    merges : pandas.DataFrame
        SciPy's linkage matrix as columns ``left``, ``right`` (leaves ``0..m-1``, then merge
        ``i`` is ``m + i``), ``height``, ``size`` (sample tracks under the merge).
    leaves : pandas.DataFrame
        ``leaf``, ``size`` (sample tracks), ``cluster`` (the method's cluster of them) and the
        leaf's centroid: each feature's mean z-score.
    """
    merges = pd.DataFrame({"left": top.linkage[:, 0].astype(np.int64),
                           "right": top.linkage[:, 1].astype(np.int64),
                           "height": top.linkage[:, 2],
                           "size": top.linkage[:, 3].astype(np.int64)})
    leaves = pd.DataFrame({"leaf": np.arange(len(top.leaf_sizes), dtype=np.int64),
                           "size": top.leaf_sizes, "cluster": top.leaf_labels.astype(np.int32)})
    for j, feature in enumerate(features):
        leaves[feature] = top.leaf_centers[:, j]
    return merges, leaves
