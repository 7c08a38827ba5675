"""Map projections besides PCA: ICA, UMAP and t-SNE of every track.

PCA is exact over every track (``pc1``, ``pc2`` from the model). The others are fitted on a
stratified sample of the tracks' z-scores (:mod:`~sonicatlas.modeling.stratified`), then
place every track on the workers: ICA by its linear transform (every track, the sample's
too), UMAP and t-SNE by the fitted model's own ``transform`` of the tracks outside the
sample, while the sample's tracks keep the coordinates the fit gave them. The fitted models
travel to the workers once, as one object in the graph.

umap-learn and openTSNE are imported only when a run asks for them.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass

import dask
import dask.dataframe as dd
import fsspec
import numpy as np
import pandas as pd

from sonicatlas.contract import projection_columns
from sonicatlas.errors import ConfigError
from sonicatlas.modeling.stratified import StratifiedSample, stratified_sample

#: The projections that need a fit on the sample (PCA needs none: it is the model's).
FITTED = ("ica", "umap", "tsne")
_PACKAGES = {"umap": ("umap", "umap-learn"), "tsne": ("openTSNE", "openTSNE")}


@dataclass(frozen=True)
class LinearProjection:
    """ICA as plain data: ``(Z - mean) @ components.T``, scikit-learn's ``FastICA.transform``.

    ``components`` is FastICA's ``components_`` (the unmixing matrix times the whitening), one
    row per output column; it is saved as JSON in the run's model.
    """

    mean: tuple[float, ...]
    components: tuple[tuple[float, ...], ...]

    def transform(self, Z: np.ndarray) -> np.ndarray:
        """The projection of the z-scores ``Z`` (n x d), in float64."""
        return ((np.asarray(Z, dtype=np.float64) - np.asarray(self.mean))
                @ np.asarray(self.components).T)


def extra_projections(projections) -> tuple[str, ...]:
    """The projections of ``projections`` that need a fit: all but ``pca``, in order."""
    return tuple(p for p in projections if p in FITTED)


def require_packages(projections) -> None:
    """Raise :class:`~sonicatlas.errors.ConfigError` before any work if a listed projection's
    package is not installed."""
    for name in projections:
        if name in _PACKAGES:
            module, package = _PACKAGES[name]
            try:
                __import__(module)
            except ImportError as exc:
                raise ConfigError(f"projections lists {name}, which needs {package}: "
                                  f"pip install sonicatlas[projections]") from exc


def fit_projection(name: str, Z: np.ndarray, seed: int, params: dict | None = None):
    """Fit one projection to 2 dimensions on the sample's z-scores ``Z``.

    Parameters
    ----------
    name : {"ica", "umap", "tsne"}
    Z : numpy.ndarray
        The sample's float32 z-scores (n x d).
    seed : int
        ``random_state`` of the fit.
    params : dict, optional
        More keyword arguments of ``sklearn.decomposition.FastICA``, ``umap.UMAP`` or
        ``openTSNE.TSNE`` (``projection_params`` of the config).

    Returns
    -------
    object
        A :class:`LinearProjection` for ICA; the fitted ``umap.UMAP``; openTSNE's
        ``TSNEEmbedding`` without its affinity matrix ``P`` (placing new points needs only
        the neighbour index and the embedding).
    """
    params = dict(params or {})
    if name == "ica":
        from sklearn.decomposition import FastICA
        ica = FastICA(**{"n_components": 2, "whiten": "unit-variance", "random_state": seed,
                         **params}).fit(Z)
        return LinearProjection(tuple(map(float, ica.mean_)),
                                tuple(tuple(map(float, r)) for r in ica.components_))
    require_packages([name])
    if name == "umap":
        import umap
        with warnings.catch_warnings():  # that a seed makes it single-threaded: it is meant to
            warnings.filterwarnings("ignore", message="n_jobs value", category=UserWarning)
            return umap.UMAP(**{"n_components": 2, "random_state": seed, **params}).fit(Z)
    if name == "tsne":
        import openTSNE
        embedding = openTSNE.TSNE(**{"n_components": 2, "random_state": seed, **params}).fit(Z)
        embedding.affinities.P = None
        return embedding
    raise ValueError(f"unknown projection {name!r}; choose from {list(FITTED)}")


def fitted_coordinates(fitted) -> np.ndarray | None:
    """The sample's own coordinates from a fit (UMAP's ``embedding_``, the t-SNE embedding);
    ``None`` for ICA, whose transform places the sample's tracks too."""
    if isinstance(fitted, LinearProjection):
        return None
    return np.asarray(getattr(fitted, "embedding_", fitted), dtype=np.float32)


def place_partition(Z: np.ndarray, fitted: dict, positions: np.ndarray, at_fit: dict
                    ) -> dict[str, np.ndarray]:
    """Each projection's two float32 columns for one partition's z-scores ``Z``.

    ``positions`` are the partition's rows in the sample and ``at_fit[name]`` their
    coordinates from the fit: they are kept; only the other rows go through the fitted
    model's ``transform`` (openTSNE's places each row on its own against the embedding;
    umap-learn's depends a little on the rows transformed together).
    """
    out = {}
    for name, model in fitted.items():
        if at_fit.get(name) is None:
            xy = model.transform(Z)
        else:
            xy = np.empty((len(Z), 2))
            xy[positions] = at_fit[name]
            others = np.setdiff1d(np.arange(len(Z)), positions, assume_unique=True)
            if len(others):
                xy[others] = np.asarray(model.transform(Z[others]))
        first, second = projection_columns(name)
        out[first], out[second] = (np.asarray(xy[:, 0], dtype=np.float32),
                                   np.asarray(xy[:, 1], dtype=np.float32))
    return out


@dataclass
class Projections:
    """The fitted projections of a run, their sample, and the tracks' placement."""

    fitted: dict
    sample: StratifiedSample
    placed: dd.DataFrame

    def save(self, directory: str, seed: int, storage_options: dict | None = None) -> None:
        """Write ``projections.json`` beside the model: ICA's mean and components, and for
        every projection its sample size and seed. UMAP and t-SNE models are not saved (they
        would be pickles); their coordinates are in ``assignments/``."""
        record = {}
        for name, model in self.fitted.items():
            record[name] = {"sample_rows": len(self.sample.rows), "seed": seed,
                            "saved": isinstance(model, LinearProjection)}
            if isinstance(model, LinearProjection):
                record[name] |= {"mean": list(model.mean),
                                 "components": [list(r) for r in model.components]}
        fs, root = fsspec.core.url_to_fs(directory, **(storage_options or {}))
        fs.makedirs(root, exist_ok=True)
        with fs.open(f"{root}/projections.json", "w") as handle:
            json.dump(record, handle, indent=2)


def project_tracks(accepted: dd.DataFrame, labels: dd.Series, model, names, size: int,
                   seed: int, params: dict | None = None) -> Projections:
    """Fit each of ``names`` on a stratified sample and place every track, lazily.

    Parameters
    ----------
    accepted : dask.dataframe.DataFrame
        The accepted rows, with the model's feature columns.
    labels : dask.dataframe.Series
        Each accepted row's cluster, partition for partition (the run's scores).
    model : ClusterModel
        Gives the z-scores (``model.scaled``, as float32: the matrix ``query/`` holds).
    names : sequence of str
        Projections to fit (:data:`FITTED`).
    size : int
        ``projection_sample``: rows of the stratified sample.
    seed : int
        The run's seed: the sample's and every fit's.
    params : dict, optional
        ``{name: keyword arguments}`` for the fits.

    Returns
    -------
    Projections
        ``placed`` is lazy: per partition of ``accepted``, the ``<name>1``, ``<name>2``
        float32 columns, its rows in order.
    """
    params = params or {}
    features = list(model.features)
    sample = stratified_sample(labels, accepted[features], size, seed)
    Z = _z_scores(model, sample.rows)
    fitted = {name: fit_projection(name, Z, seed, params.get(name)) for name in names}
    at_fit = {name: fitted_coordinates(m) for name, m in fitted.items()}
    starts = np.concatenate([[0], np.cumsum([len(p) for p in sample.positions])])
    shared = _shared(_Models(fitted))
    parts = [dask.delayed(_place)(part, model, shared, positions,
                                  {n: None if c is None else c[starts[i]:starts[i + 1]]
                                   for n, c in at_fit.items()})
             for i, (part, positions) in enumerate(zip(accepted[features].to_delayed(),
                                                       sample.positions, strict=True))]
    meta = pd.DataFrame({c: pd.Series(dtype=np.float32)
                         for n in names for c in projection_columns(n)})
    return Projections(fitted, sample, dd.from_delayed(parts, meta=meta, verify_meta=False))


@dataclass(frozen=True)
class _Models:
    # one pickled object: distributed's own serializer for numpy arrays would drop what makes
    # openTSNE's embedding (an ndarray subclass) one
    fitted: dict


def _shared(models: _Models):
    """The models once on every worker (scattered: a t-SNE model of a 100k sample is some
    hundreds of MB, which would otherwise go through the scheduler in the graph); without a
    distributed client, one key of the graph."""
    from distributed import default_client

    try:
        client = default_client()
    except ValueError:
        return dask.delayed(models, traverse=False)
    return client.scatter(models, broadcast=True, hash=False)


def _place(part: pd.DataFrame, model, shared: _Models, positions, at_fit) -> pd.DataFrame:
    Z = _z_scores(model, part)
    return pd.DataFrame(place_partition(Z, shared.fitted, positions, at_fit), index=part.index)


def _z_scores(model, frame: pd.DataFrame) -> np.ndarray:
    # row-major: openTSNE's fit gives other coordinates for the same numbers column-major
    return np.ascontiguousarray(model.scaled(frame), dtype=np.float32)
