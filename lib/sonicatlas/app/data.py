"""What the explorer holds: one row per track, the columns its views filter, draw and list.

A run's ``assignments/`` gives the cluster, the map coordinates and the carried metadata; the
audio features, in their own units, come from the run's query data (the standardised features
and the run's scaler). Categorical columns are held as pandas categoricals, numbers in float32
where that is exact enough to filter and draw, so a 10M-track run fits in a few GB.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from sonicatlas import storage
from sonicatlas.app.access import ClusterTracks, LocalTracks
from sonicatlas.config import PROJECTION_NAMES
from sonicatlas.contract import (
    ARTIST,
    CLUSTER,
    CLUSTER_NAME,
    FEATURES,
    GENRE_SEPARATOR,
    PC1,
    PC2,
    TRACK_ID,
    method_cluster,
    projection_columns,
)
from sonicatlas.discover import querydata
from sonicatlas.errors import InputError

#: Metadata the filters and tables use, when the run carried it.
TEXT = ("track_name", ARTIST, "album_name", "genre")
NUMBERS = ("popularity", "release_year", "explicit")


@dataclass
class RunData:
    """A run's tracks and summaries, as the explorer's views read them.

    Attributes
    ----------
    run : str
        The run directory (path or fsspec URL).
    tracks : pandas.DataFrame or dask.dataframe.DataFrame
        One row per assigned track: ``track_id``, ``cluster``, ``cluster_name``, ``pc1``,
        ``pc2``, ``distance``, the other projections' columns the run made (``ica1``,
        ``ica2``, ...), the carried metadata, ``year`` and the audio features that the run's
        query data holds.
    names : list of str
        Cluster names by cluster id.
    manifest : dict
    profiles : pandas.DataFrame
        ``summary/cluster_profiles``.
    rejects : pandas.DataFrame
        Rows rejected, by reason (``reason``, ``rows``).
    features : list of str
        The audio features present in ``tracks``.
    methods : dict
        The compared methods whose labels the run holds (``cluster_<method>``), each with
        its clusters' names by id.
    vectors : numpy.ndarray or None
        The run's standardised features of ``features``, float32, row for row with
        ``tracks``: what similar songs, playlists and artist profiles compare. None for a run
        without query data, or one held on a cluster.
    storage_options : dict
        fsspec options for ``run``, for what reads more of it later.
    access : LocalTracks or ClusterTracks
        How the views reach ``tracks`` (:mod:`sonicatlas.app.access`).
    genre_labels : list of str or None
        The catalog's genre labels when ``tracks`` is a dask DataFrame.
    """

    run: str
    tracks: pd.DataFrame
    names: list[str]
    manifest: dict
    profiles: pd.DataFrame
    rejects: pd.DataFrame
    features: list[str] = field(default_factory=list)
    vectors: np.ndarray | None = None
    methods: dict[str, list[str]] = field(default_factory=dict)
    storage_options: dict = field(default_factory=dict)
    access: LocalTracks | ClusterTracks | None = None
    genre_labels: list[str] | None = None

    def __post_init__(self):
        if self.access is None:
            self.access = LocalTracks(self.tracks)
        self._moments = None

    def moments(self) -> dict[str, tuple[float, float]]:
        """Each audio feature's mean and standard deviation over the whole catalog (what the
        z-scores compare with), computed once."""
        if self._moments is None:
            self._moments = self.access.moments(list(self.features))
        return self._moments

    def labels(self, method: str | None = None) -> tuple[np.ndarray, list[str]]:
        """Each track's cluster id by ``method`` (the run's own KMeans when None or
        ``kmeans``; -1 is noise) and the names of that method's clusters, by id."""
        column, names = self.label_column(method)
        return self.tracks[column].to_numpy(), names

    def label_column(self, method: str | None = None) -> tuple[str, list[str]]:
        """The column of ``method``'s cluster ids and the names of its clusters, by id."""
        if method in (None, "kmeans") or method not in self.methods:
            return CLUSTER, self.names
        return method_cluster(method), self.methods[method]

    @property
    def projections(self) -> list[str]:
        """The map projections the run holds: ``pca``, then those of ``projections:`` whose
        two columns are in ``tracks`` (``ica``, ``umap``, ``tsne``)."""
        return ["pca", *(p for p in PROJECTION_NAMES if p != "pca"
                         and set(projection_columns(p)) <= set(self.tracks.columns))]

    def projection_axes(self, projection: str) -> tuple[str, str]:
        """The two columns of ``tracks`` that place a track on ``projection``'s map."""
        return (PC1, PC2) if projection == "pca" else projection_columns(projection)

    @property
    def genres(self) -> list[str]:
        """Every single genre of the catalog (a track with a list counts under each)."""
        if "genre" not in self.tracks:
            return []
        labels = (self.tracks["genre"].cat.categories if self.genre_labels is None
                  else self.genre_labels)
        return sorted({g.strip() for label in labels
                       for g in str(label).split(GENRE_SEPARATOR) if g.strip()})


def run_fs(run: str, storage_options: dict | None):
    """The run's file system and its root path in that file system's terms."""
    with storage.reading(str(run)):
        fs, root = storage.resolve(str(run), storage_options)
    return fs, root.rstrip("/")


def read_manifest(fs, root: str, run: str) -> dict:
    """The manifest of a cluster-tracks run (:func:`~sonicatlas.discover.querydata.read_manifest`
    with the explorer's folder and words)."""
    return querydata.read_manifest(fs, root, run, "assignments", "the explorer shows")


def read_run(run: str, storage_options: dict | None = None) -> RunData:
    """Load a cluster-tracks run for the explorer.

    Parameters
    ----------
    run : str
        Run directory, local or any fsspec URL.
    storage_options : dict, optional
        fsspec options for ``run``.

    Returns
    -------
    RunData

    Raises
    ------
    InputError
        ``run`` is not a cluster-tracks run, or one of its tables cannot be read (named).
    """
    fs, root = run_fs(run, storage_options)
    manifest = read_manifest(fs, root, run)
    tracks = read_table(fs, root, "assignments")
    profiles = read_table(fs, root, "summary/cluster_profiles")
    names = cluster_names(profiles)
    tracks = tidy_tracks(tracks, names)
    features, vectors = [], None
    if fs.isdir(f"{root}/query"):
        tracks, features, vectors = _with_features(fs, root, tracks)
    rejects = reject_counts(fs, root)
    methods = method_names(fs, root, tracks)
    return RunData(run, tracks, names, manifest, profiles, rejects, features, vectors, methods,
                   dict(storage_options or {}))


def method_names(fs, root: str, tracks: pd.DataFrame) -> dict[str, list[str]]:
    """Names of each compared method's clusters, for the methods whose labels were kept."""
    methods = {}
    for column in tracks.columns:
        method = column.removeprefix(f"{CLUSTER}_")
        if column == method_cluster(method) and method not in ("name", "kmeans") and \
                fs.exists(f"{root}/summary/cluster_profiles_{method}"):
            table = read_table(fs, root, f"summary/cluster_profiles_{method}")
            table = table[table[CLUSTER] >= 0].sort_values(CLUSTER)
            names = [f"Cluster {c}" for c in range(int(table[CLUSTER].max()) + 1)] \
                if len(table) else []
            for cluster, name in zip(table[CLUSTER], table["name"], strict=True):
                names[int(cluster)] = str(name)
            methods[method] = names
    return methods


def read_table(fs, root: str, name: str) -> pd.DataFrame:
    """A table of the run, read whole; a damaged or missing one is an InputError naming it."""
    path = f"{root}/{name}"
    try:
        return pd.read_parquet(path, filesystem=fs)
    except Exception as error:  # a damaged or missing file: name it for the user
        raise InputError(f"cannot read {path}: {error}") from error


def cluster_names(profiles: pd.DataFrame) -> list[str]:
    """The clusters' names by id, from ``summary/cluster_profiles``."""
    ordered = profiles.sort_values(CLUSTER)
    if "name" in ordered:
        return [str(n) for n in ordered["name"]]
    return [f"Cluster {c}" for c in ordered[CLUSTER]]


def tidy_tracks(tracks: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    """Categoricals for the text columns, float32 coordinates, a ``year`` column."""
    out = pd.DataFrame({TRACK_ID: tracks[TRACK_ID].astype("string")})
    out[CLUSTER] = tracks[CLUSTER].astype(np.int32)
    labels = np.array(names + ["Noise"], dtype=object)
    codes = np.where(out[CLUSTER].to_numpy() < 0, len(names), out[CLUSTER].to_numpy())
    out[CLUSTER_NAME] = pd.Categorical.from_codes(codes, categories=list(labels))
    for column in (PC1, PC2, "distance"):
        out[column] = tracks[column].astype(np.float32)
    for projection in PROJECTION_NAMES:  # the other maps the run made, when it made them
        for column in projection_columns(projection) if projection != "pca" else ():
            if column in tracks:
                out[column] = tracks[column].astype(np.float32)
    for column in tracks.columns:  # compared methods' labels, when the run kept them
        if column.startswith(f"{CLUSTER}_"):
            out[column] = tracks[column].astype(np.int32)
    for column in TEXT:
        if column in tracks:
            out[column] = tracks[column].astype("string").fillna("").astype("category")
    for column in NUMBERS:
        if column in tracks:
            out[column] = pd.to_numeric(tracks[column], errors="coerce").astype(np.float32)
    if "release_year" not in tracks and "release_date" in tracks:
        year = pd.to_numeric(tracks["release_date"].astype("string").str.slice(0, 4),
                             errors="coerce")
        out["release_year"] = year.astype(np.float32)
    return out


def _with_features(fs, root: str, tracks: pd.DataFrame
                   ) -> tuple[pd.DataFrame, list[str], np.ndarray]:
    """The standardised features row for row with ``tracks``, and the features in their own
    units joined to ``tracks`` (query data + the run's scaler)."""
    query = pd.read_parquet(f"{root}/query", filesystem=fs)
    with fs.open(f"{root}/model/model.json") as f:
        model = json.load(f)
    features = [c for c in model.get("features", FEATURES) if c in query]
    mean = np.asarray(model["scale_mean"], dtype=np.float64)
    std = np.asarray(model["scale_std"], dtype=np.float64)
    at = pd.Index(query[TRACK_ID].astype("string")).get_indexer(tracks[TRACK_ID])
    if (at < 0).any():
        raise InputError(f"{root}/query lacks {int((at < 0).sum()):,} assigned tracks; "
                         "re-run cluster-tracks to rebuild the run")
    vectors = np.empty((len(tracks), len(features)), dtype=np.float32)
    out = tracks  # the caller's own frame, built by _tidy: no copy of a 10M-row table
    for j, feature in enumerate(model["features"]):
        if feature in features:
            column = query[feature].to_numpy(np.float32)[at]
            vectors[:, features.index(feature)] = column
            out[feature] = (column.astype(np.float64) * std[j] + mean[j]).astype(np.float32)
    return out, features, vectors


def reject_counts(fs, root: str) -> pd.DataFrame:
    """Rows the run rejected, by reason (``reason``, ``rows``)."""
    path = f"{root}/summary/rejects"
    if not fs.exists(path):
        return pd.DataFrame({"reason": [], "rows": []})
    rejects = pd.read_parquet(path, filesystem=fs, columns=["reason"])
    counts = rejects["reason"].value_counts()
    return pd.DataFrame({"reason": counts.index.astype(str), "rows": counts.to_numpy()})
