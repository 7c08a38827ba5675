"""A run's query data: the standardised features beside the ids, the model, the metadata.

``query/`` partition ``i`` holds the rows of ``assignments/`` partition ``i`` in the same order
(the job writes both from the same partitions), so a query reads the float32 features and ids
from ``query/``, the small ``cluster`` column from ``assignments/`` beside it, and the carried
metadata of only the rows it shows, by their positions in the files that hold them.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

import dask
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from sonicatlas import storage
from sonicatlas.contract import CLUSTER, CLUSTER_NAME, DISTANCE, PC1, PC2, TRACK_ID
from sonicatlas.errors import InputError
from sonicatlas.modeling.model import ClusterModel

#: assignments/ columns that are not carried metadata
SCORES = (TRACK_ID, CLUSTER, DISTANCE, PC1, PC2)
MAKE_RUN = "`sonicatlas run cluster-tracks`"


@dataclass(frozen=True)
class QueryRun:
    """A run opened for queries: where its parts are, its model and cluster names.

    Attributes
    ----------
    url : str
        The run directory as given.
    root : str
        Its path in ``fs``'s terms.
    model : ClusterModel
    names : tuple of str
        Cluster names by cluster id.
    parts : tuple of str
        File names present in both ``query/`` and ``assignments/``, in partition order.
    carried : tuple of str
        The metadata columns of ``assignments/``.
    """

    url: str
    fs: object = field(repr=False)
    root: str
    model: ClusterModel
    names: tuple[str, ...]
    parts: tuple[str, ...]
    carried: tuple[str, ...]

    @property
    def features(self) -> tuple[str, ...]:
        return self.model.features

    def query_file(self, part: str) -> str:
        return f"{self.root}/query/{part}"

    def assignments_file(self, part: str) -> str:
        return f"{self.root}/assignments/{part}"

    def cluster_name(self, clusters) -> pd.Series:
        """Names of cluster ids (noise, -1, is ``Noise``)."""
        labels = np.array([*self.names, "Noise"], dtype=object)
        codes = np.asarray(clusters, dtype=np.int64)
        return pd.Series(labels[np.where(codes < 0, len(self.names), codes)], dtype="string")


def load_model(directory: str, features: tuple[str, ...] | None = None,
               storage_options: dict | None = None) -> ClusterModel:
    """A run's ``model/``, checked: every array the right shape and finite.

    Parameters
    ----------
    directory : str
        The ``model`` directory of a run (path or fsspec URL).
    features : tuple of str, optional
        The features the model must have been fitted on, in order.

    Raises
    ------
    InputError
        The model is missing or damaged, or was fitted on other features.
    """
    try:
        model = ClusterModel.load(directory, storage_options)
    except FileNotFoundError as error:
        raise InputError(f"no model at {directory} (model.json missing); re-run "
                         f"{MAKE_RUN}") from error
    except (ValueError, KeyError, TypeError) as error:  # bad JSON, missing or unknown keys
        raise InputError(f"the model at {directory} is damaged ({error.__class__.__name__}: "
                         f"{error}); re-run {MAKE_RUN}") from error
    d = len(model.features)
    shapes = {"scale_mean": np.shape(model.scale_mean), "scale_std": np.shape(model.scale_std),
              "pca_mean": np.shape(model.pca_mean)}
    bad = [name for name, shape in shapes.items() if shape != (d,)]
    try:
        centers = np.asarray(model.centers, dtype=np.float64)
        components = np.asarray(model.pca_components, dtype=np.float64)
    except ValueError:
        centers = components = np.empty((0, 0))
    if centers.ndim != 2 or centers.shape[1:] != (d,) or len(centers) == 0:
        bad.append("centers")
    if components.ndim != 2 or components.shape[1:] != (d,) or len(components) < 2:
        bad.append("pca_components")
    if not bad and not all(np.isfinite(np.asarray(a, dtype=np.float64)).all() for a in
                           (model.scale_mean, model.scale_std, centers, components)):
        bad.append("non-finite numbers")
    if not bad and (np.asarray(model.scale_std) <= 0).any():
        bad.append("scale_std <= 0")
    if bad:
        raise InputError(f"the model at {directory} is damaged ({', '.join(bad)} do not fit "
                         f"its {d} features); re-run {MAKE_RUN}")
    if features is not None and tuple(features) != model.features:
        raise InputError(f"the model at {directory} was fitted on {', '.join(model.features)}"
                         f", not on {', '.join(features)}: it belongs to another feature set")
    return model


def _part_names(fs, directory: str) -> list[str]:
    names = [p.rsplit("/", 1)[-1] for p in fs.ls(directory, detail=False)]
    names = [n for n in names if n.endswith(".parquet") and not n.startswith(("_", "."))]
    number = re.compile(r"(\d+)")
    return sorted(names, key=lambda n: [int(t) if t.isdigit() else t for t in number.split(n)])


def read_manifest(fs, root: str, run: str, needs: str, purpose: str) -> dict:
    """The manifest of the cluster-tracks run at ``root``, whose ``needs`` folder is present.

    Parameters
    ----------
    fs : fsspec.AbstractFileSystem
    root : str
        The run directory in ``fs``'s terms.
    run : str
        The run directory as the user gave it, for the messages.
    needs : str
        The folder the caller reads (named when it is missing).
    purpose : str
        What the caller does, for the message when the run is another job's.

    Raises
    ------
    InputError
        Nothing is at ``run``, it is not a run directory, or it is another job's run.
    """
    with storage.reading(str(run)):
        found = fs.isfile(f"{root}/manifest.json") and fs.isdir(f"{root}/{needs}")
        there = found or fs.exists(root)
        if found:
            with fs.open(f"{root}/manifest.json") as handle:
                manifest = json.load(handle)
    if not there:
        raise InputError(f"no run directory at {run}: nothing is there")
    if not found:
        raise InputError(f"{run} is not a run directory (no manifest.json and {needs}/); "
                         f"make one with {MAKE_RUN}")
    if manifest.get("job") != "cluster-tracks":
        raise InputError(f"{run} is a {manifest.get('job')} run; {purpose} a cluster-tracks "
                         "run")
    return manifest


def read_run_model(run: str, storage_options: dict | None = None, needs: str = "model",
                   purpose: str = "this needs") -> tuple:
    """A cluster-tracks run's file system, root, manifest, checked model and cluster names.

    Parameters
    ----------
    run : str
        The run directory (any fsspec URL).
    storage_options : dict, optional
    needs : str
        The folder the caller reads besides the model (named when it is missing).
    purpose : str
        What the caller does, for the message when the run is another job's.

    Raises
    ------
    InputError
        Not a cluster-tracks run, or a missing, damaged or foreign model.
    """
    with storage.reading(str(run)):
        fs, root = storage.resolve(str(run), storage_options)
    manifest = read_manifest(fs, root, run, needs, purpose)
    features = manifest.get("config", {}).get("features")
    model = load_model(fs.unstrip_protocol(f"{root}/model"),
                       tuple(features) if features else None, storage_options)
    with fs.open(f"{root}/model/model.json") as handle:
        names = json.load(handle).get("cluster_names") or [f"Cluster {c}"
                                                           for c in range(model.k)]
    return fs, root, manifest, model, list(names)


def open_query_run(run: str, storage_options: dict | None = None) -> QueryRun:
    """Open a cluster-tracks run for queries, after checking it has what they read.

    Parameters
    ----------
    run : str
        Run directory, local or any fsspec URL.
    storage_options : dict, optional

    Returns
    -------
    QueryRun

    Raises
    ------
    InputError
        ``run`` is not a cluster-tracks run, has no query data (a run made before runs held
        it), or its query data and assignments do not match.
    """
    if isinstance(run, QueryRun):
        return run
    fs, root, _, model, names = read_run_model(run, storage_options, needs="assignments",
                                               purpose="queries need")
    if not fs.isdir(f"{root}/query"):
        raise InputError(f"{run} has no query data (query/): re-run {MAKE_RUN} on its input "
                         "to make it queryable")
    parts = _part_names(fs, f"{root}/query")
    if not parts or parts != _part_names(fs, f"{root}/assignments"):
        raise InputError(f"{run}: query/ and assignments/ hold different parts; re-run "
                         f"{MAKE_RUN}")
    schema = pq.read_schema(f"{root}/assignments/{parts[0]}", filesystem=fs)
    # compared methods' labels (cluster_gmm, ...) are scores too, not metadata
    carried = tuple(c for c in schema.names
                    if c not in SCORES and not c.startswith(f"{CLUSTER}_"))
    return QueryRun(str(run), fs, root, model, tuple(names), tuple(parts), carried)


# --- one partition ------------------------------------------------------------------------

def read_vectors(run: QueryRun, part: str) -> np.ndarray:
    """One partition's standardised features as a float32 (rows, features) matrix.

    Column-major: each column is copied in one contiguous write (twice as fast as filling a
    row-major matrix), and the scoring kernels read the ten columns as ten sequential streams.
    """
    table = pq.read_table(run.query_file(part), columns=list(run.features),
                          filesystem=run.fs)
    out = np.empty((table.num_rows, len(run.features)), dtype=np.float32, order="F")
    for j, name in enumerate(run.features):
        out[:, j] = table.column(name).to_numpy()
    return out


def read_columns(run: QueryRun, part: str) -> tuple[np.ndarray, ...]:
    """One partition's standardised features as float32 columns, as Arrow read them (no copy)."""
    table = pq.read_table(run.query_file(part), columns=list(run.features),
                          filesystem=run.fs)
    return tuple(table.column(name).to_numpy() for name in run.features)


def read_ids(run: QueryRun, part: str) -> pa.Array:
    """One partition's track ids, as one Arrow string array."""
    table = pq.read_table(run.query_file(part), columns=[TRACK_ID], filesystem=run.fs)
    return table.column(TRACK_ID).combine_chunks()


def read_assigned(run: QueryRun, part: str, columns: list[str]) -> pd.DataFrame:
    """Columns of one ``assignments/`` partition, checked to have the query's row count."""
    table = pq.read_table(run.assignments_file(part), columns=columns, filesystem=run.fs)
    return table.to_pandas()


# --- the whole run ------------------------------------------------------------------------

@dataclass
class TrackMatrix:
    """Every track's standardised features in memory, for queries without a pass over files.

    Attributes
    ----------
    ids : pyarrow.Array
        Track ids, row for row.
    vectors : numpy.ndarray
        float32, (tracks, features), column-major (as read; any layout works).
    clusters : numpy.ndarray
        int32 cluster of each row.
    features : tuple of str
    """

    ids: pa.Array
    vectors: np.ndarray
    clusters: np.ndarray
    features: tuple[str, ...]

    def position(self, track_id: str) -> int | None:
        """Row of ``track_id``, or None."""
        found = pc.index(self.ids, pa.scalar(str(track_id), self.ids.type)).as_py()
        return None if found < 0 else int(found)


def load_matrix(run: QueryRun | str) -> TrackMatrix:
    """Read the run's query data (and clusters) into one :class:`TrackMatrix`.

    The partitions are read in parallel on the current dask scheduler and concatenated here:
    this is the explorer's and the benchmark's in-memory copy, a catalog that fits on one
    machine (about 44 bytes a track for ten features).
    """
    run = open_query_run(run)
    read = dask.delayed(_read_part, pure=True)
    pieces = dask.compute(*(read(run, part) for part in run.parts))
    ids = pa.concat_arrays([p[0] for p in pieces]) if pieces else pa.array([], pa.string())
    return TrackMatrix(ids, np.concatenate([p[1] for p in pieces]),
                       np.concatenate([p[2] for p in pieces]), run.features)


def _read_part(run: QueryRun, part: str):
    vectors = read_vectors(run, part)
    clusters = read_assigned(run, part, [CLUSTER])[CLUSTER].to_numpy(np.int32)
    if len(clusters) != len(vectors):
        raise InputError(f"{run.url}: query/{part} and assignments/{part} hold different "
                         f"rows; re-run {MAKE_RUN}")
    ids = read_ids(run, part)
    if ids.type != pa.string():
        ids = ids.cast(pa.string())
    return ids, vectors, clusters


def track_rows(run: QueryRun, rows_by_part: dict[str, list[int]]) -> pd.DataFrame:
    """``track_id``, ``cluster``, ``cluster_name`` and the carried metadata of a few tracks.

    Parameters
    ----------
    run : QueryRun
    rows_by_part : dict
        Row positions within each ``assignments/`` part (the same as in ``query/``).

    Notes
    -----
    Only the files that hold them are read, in parallel on the current dask scheduler. Text
    columns are read as Parquet stored them, dictionary-encoded, and only the rows taken are
    decoded: a few rows cost little more than the columns' dictionaries.
    """
    columns = [TRACK_ID, CLUSTER, *run.carried]
    read = dask.delayed(_rows_at, pure=True)
    frames = dask.compute(*(read(run, part, rows, columns)
                            for part, rows in rows_by_part.items() if len(rows)))
    if not frames:
        frame = pd.DataFrame({c: [] for c in columns})
    else:
        frame = pd.concat(frames, ignore_index=True)
    frame[TRACK_ID] = frame[TRACK_ID].astype("string")
    frame.insert(2, CLUSTER_NAME, run.cluster_name(frame[CLUSTER].fillna(-1)))
    return frame


def _rows_at(run: QueryRun, part: str, rows: list[int], columns: list[str]) -> pd.DataFrame:
    path = run.assignments_file(part)
    schema = pq.read_schema(path, filesystem=run.fs)
    text = [c for c in columns if c != TRACK_ID and (
        pa.types.is_string(schema.field(c).type) or pa.types.is_large_string(schema.field(c).type))]
    table = pq.read_table(path, columns=columns, filesystem=run.fs, read_dictionary=text)
    taken = table.take(pa.array(rows, pa.int64()))
    decoded = [pc.cast(col, col.type.value_type) if pa.types.is_dictionary(col.type) else col
               for col in taken.columns]
    return pa.table(decoded, names=taken.column_names).to_pandas()


def with_metadata(run: QueryRun, hits: pd.DataFrame) -> pd.DataFrame:
    """``hits`` joined to the metadata of its tracks, in ``hits``' order.

    ``hits`` has ``part`` and ``position`` (the row in that part), which locate each track and
    are dropped; ``track_id`` is taken from ``assignments/`` where ``hits`` has none, and
    checked against it where it has.
    """
    rows_by_part = {part: group["position"].astype(np.int64).tolist()
                    for part, group in hits.groupby("part", sort=False)}
    rows = track_rows(run, rows_by_part)
    rows.insert(0, "position", np.array([p for rows_ in rows_by_part.values() for p in rows_],
                                        dtype=np.int64))
    rows.insert(0, "part", pd.Series([part for part, rows_ in rows_by_part.items()
                                      for _ in rows_], dtype=object))
    rows = rows.drop_duplicates(["part", "position"])
    base = hits.reset_index(drop=True).astype({"part": object, "position": np.int64})
    given = base.pop(TRACK_ID) if TRACK_ID in base.columns else None
    drop = [c for c in rows.columns if c in base.columns and c not in ("part", "position")]
    out = base.drop(columns=drop).merge(rows, on=["part", "position"], how="left", sort=False)
    if given is not None and given.notna().any():
        wrong = given.notna() & (given.astype("string") != out[TRACK_ID]).fillna(True)
        if wrong.any():
            first = wrong.to_numpy().argmax()
            raise InputError(f"{run.url}: query/ and assignments/ hold different rows (no "
                             f"{given.iloc[first]!r} in assignments/{base['part'].iloc[first]}); "
                             f"re-run {MAKE_RUN}")
    columns = [TRACK_ID, *(c for c in out.columns if c not in (TRACK_ID, "part", "position"))]
    return out[columns]
