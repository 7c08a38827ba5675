"""The fitted track model as plain data: scaling, projection and centroids.

It is small (a few hundred numbers), so it travels to the workers inside each task and is
saved as JSON and Parquet (never a pickle). :meth:`ClusterModel.score_partition`
places the rows of one partition; :meth:`ClusterModel.score_frame` does so lazily over a dask
DataFrame.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import fsspec
import numpy as np
import pandas as pd

from sonicatlas.contract import CLUSTER, DISTANCE, PC1, PC2, method_cluster
from sonicatlas.estimators.lloyd import score_rows

if TYPE_CHECKING:  # the queries load a model without paying for dask.dataframe's import
    import dask.dataframe as dd


@dataclass(frozen=True)
class ClusterModel:
    """Everything needed to place a track: z-scores, PCA, nearest centroid."""

    features: tuple[str, ...]
    scale_mean: tuple[float, ...]
    scale_std: tuple[float, ...]
    pca_mean: tuple[float, ...]
    #: row i holds the loadings of principal component i + 1
    pca_components: tuple[tuple[float, ...], ...]
    pca_explained_variance_ratio: tuple[float, ...]
    #: in the scaled feature space
    centers: tuple[tuple[float, ...], ...]
    seed: int

    @classmethod
    def from_estimators(cls, features, scaler, pca, centers, seed: int) -> ClusterModel:
        """Collect the learned numbers from a fitted scaler and PCA, and cluster centers."""
        def rows(a):
            return tuple(tuple(map(float, r)) for r in np.asarray(a))
        return cls(tuple(features), tuple(map(float, scaler.mean_)),
                   tuple(map(float, scaler.scale_)), tuple(map(float, pca.mean_)),
                   rows(pca.components_), tuple(map(float, pca.explained_variance_ratio_)),
                   rows(centers), seed)

    @property
    def k(self) -> int:
        return len(self.centers)

    def scaled(self, frame: pd.DataFrame) -> np.ndarray:
        """The features of ``frame`` as float64 z-scores."""
        X = frame[list(self.features)].to_numpy(dtype=np.float64)
        return (X - np.asarray(self.scale_mean)) / np.asarray(self.scale_std)

    def score_partition(self, frame: pd.DataFrame, labeler=None, methods: dict | None = None
                        ) -> pd.DataFrame:
        """Cluster, distance to its centroid, pc1 and pc2 of every row of ``frame``.

        ``labeler`` (a fitted method with ``predict`` on z-scores) gives the clusters instead
        of the nearest centroid; its noise label -1 gets a missing distance. ``methods``
        (``{name: fitted method}``) adds each one's ``predict`` of the float32 z-scores as
        ``cluster_<name>`` (:func:`sonicatlas.contract.method_cluster`), the matrix ``query/``
        holds.
        """
        centers = np.asarray(self.centers)
        components = np.asarray(self.pca_components)[:2]
        if labeler is None:
            # one compiled pass: z-scores, nearest centroid, distance and pc1/pc2 per row,
            # instead of numpy's separate products and argmin over float64 temporaries
            X = frame[list(self.features)].to_numpy()  # float32 for the accepted rows
            if X.dtype.kind != "f":
                X = X.astype(np.float64)
            labels, squared, pcs = score_rows(X, centers, mean=self.scale_mean,
                                              scale=self.scale_std,
                                              project_mean=self.pca_mean, project=components)
        else:
            Z = self.scaled(frame)
            labels = np.asarray(labeler.predict(Z.astype(np.float32)))
            safe = np.clip(labels, 0, None)
            squared = np.where(labels >= 0, ((Z - centers[safe]) ** 2).sum(axis=1), np.nan)
            pcs = (Z - np.asarray(self.pca_mean)) @ components.T
        columns = {CLUSTER: labels.astype(np.int32), DISTANCE: np.sqrt(squared),
                   PC1: pcs[:, 0].astype(np.float32), PC2: pcs[:, 1].astype(np.float32)}
        if methods:
            Z = self.scaled(frame).astype(np.float32)
            for name, method in methods.items():
                columns[method_cluster(name)] = np.asarray(method.predict(Z)).astype(np.int32)
        return pd.DataFrame(columns, index=frame.index)

    def score_frame(self, frame: dd.DataFrame, keep: list[str], labeler=None
                    ) -> dd.DataFrame:
        """Lazy ``frame[keep]`` with :meth:`score_partition`'s four columns, partition by
        partition."""
        return frame.map_partitions(self._keep_and_score, keep, labeler)

    def _keep_and_score(self, part: pd.DataFrame, keep: list[str], labeler) -> pd.DataFrame:
        return with_scores(part[keep], self.score_partition(part, labeler))

    def save(self, directory: str, names: list[str], storage_options: dict | None = None):
        """Write ``model.json`` (all parameters) and ``centroids.parquet`` (readable units)."""
        fs, root = fsspec.core.url_to_fs(directory, **(storage_options or {}))
        fs.makedirs(root, exist_ok=True)
        with fs.open(f"{root}/model.json", "w") as handle:
            json.dump(asdict(self) | {"cluster_names": names}, handle, indent=2)
        centers = np.asarray(self.centers)
        original = centers * np.asarray(self.scale_std) + np.asarray(self.scale_mean)
        table = pd.DataFrame(original, columns=list(self.features))
        table.insert(0, "name", names)
        table.insert(0, CLUSTER, np.arange(self.k, dtype=np.int32))
        scaled = pd.DataFrame(centers, columns=[f"{f}_z" for f in self.features])
        with fs.open(f"{root}/centroids.parquet", "wb") as handle:
            pd.concat([table, scaled], axis=1).to_parquet(handle, index=False)

    @classmethod
    def load(cls, directory: str, storage_options: dict | None = None) -> ClusterModel:
        """Read a model saved by :meth:`save`."""
        fs, root = fsspec.core.url_to_fs(directory, **(storage_options or {}))
        with fs.open(f"{root}/model.json") as handle:
            data = json.load(handle)
        data.pop("cluster_names", None)
        for key in ("features", "scale_mean", "scale_std", "pca_mean",
                    "pca_explained_variance_ratio"):
            data[key] = tuple(data[key])
        for key in ("pca_components", "centers"):
            data[key] = tuple(tuple(r) for r in data[key])
        return cls(**data)


def with_scores(frame: pd.DataFrame, scores: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with the columns of ``scores``, row for row (the same rows, in order)."""
    if len(frame) != len(scores):
        raise ValueError(f"{len(frame)} rows but {len(scores)} scores")
    return frame.assign(**{name: scores[name].to_numpy() for name in scores.columns})
