"""What both jobs do between their accepted rows and their outputs: scale, project, cluster,
and collect the fitted model."""

from __future__ import annotations

from dataclasses import dataclass

import dask.array as da
import dask.dataframe as dd
import pandas as pd

from sonicatlas.config import ClusteringConfig
from sonicatlas.modeling.clustering import Clustering, fit_clusters
from sonicatlas.modeling.engines import engine_named
from sonicatlas.modeling.model import ClusterModel


@dataclass
class FittedModel:
    """The fitted scaler, PCA and clusters, and the model that scores rows with them."""

    scaler: object
    pca: object
    clusters: Clustering
    model: ClusterModel

    @property
    def tables(self) -> dict[str, pd.DataFrame]:
        """The clustering's ``summary/`` tables (k_sweep, method_comparison) by name."""
        return self.clusters.tables


def fit_model(frame: dd.DataFrame, columns, config: ClusteringConfig, stage, echo,
              hold_scaled: bool = True) -> FittedModel:
    """Scale ``frame[columns]``, project it with PCA and cluster it, with ``config.engine``.

    The stages are named ``scale``, ``pca``, then those of
    :func:`~sonicatlas.modeling.clustering.fit_clusters` (``kmeans`` or ``choose k``, the
    algorithm, ``compare methods``). The scaled matrix is released before returning: the
    model scores the rows from their original columns.

    Parameters
    ----------
    frame : dask.dataframe.DataFrame
        The rows to fit on, persisted (they are read twice).
    columns : sequence of str
        The columns clustered, in the model's order.
    config : ClusteringConfig
        ``engine``, ``k``, ``kmeans``, ``sweep``, ``algorithm``, ``compare`` and ``seed``.
    stage : callable
        ``stage(name)`` gives a context manager that times a stage.
    echo : callable
        Progress lines.
    hold_scaled : bool, default True
        Persist the scaled matrix; False scales ``frame``'s features again on each pass over
        it (a catalog too large to hold both).
    """
    columns = tuple(columns)
    engine = engine_named(config.engine)
    with stage("scale"):
        scaler, scaled = engine.scale(frame, columns, hold_scaled)
    with stage("pca"):
        pca = engine.project(scaler, scaled)
    clusters = fit_clusters(scaled, config, stage, echo, engine, columns)
    # A fitted estimator's lazy labels_ is a graph over the scaled matrix: holding it would
    # keep every scaled chunk on the workers for the rest of the run.
    for estimator in (clusters.kmeans, clusters.labeler, *clusters.methods.values()):
        if isinstance(getattr(estimator, "labels_", None), da.Array):
            del estimator.labels_
    del scaled
    model = ClusterModel.from_estimators(columns, scaler, pca, clusters.centers, config.seed)
    return FittedModel(scaler, pca, clusters, model)
