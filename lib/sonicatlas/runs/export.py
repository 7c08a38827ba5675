"""Take one cluster's tracks (or all) out of a run directory, as CSV, JSON Lines or Parquet.

Exports read ``assignments/`` lazily with Dask and write partition by partition, so a catalog
of any size streams through without being collected on the client. Every output is written
to a hidden sibling first and renamed into place when complete, so an ``out`` that exists is
whole.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import dask
import dask.dataframe as dd
import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from sonicatlas import storage
from sonicatlas.contract import CLUSTER, CLUSTER_NAME, DISTANCE, TRACK_ID, method_cluster
from sonicatlas.errors import InputError
from sonicatlas.runs.provenance import EXPORT_KIND, is_export
from sonicatlas.runs.reading import read_profiles, run_folder

FORMATS = ("csv", "json", "parquet")

_JSON_ROWS = 50_000
_SUFFIXES = {".csv": "csv", ".json": "json", ".jsonl": "json", ".ndjson": "json",
             ".parquet": "parquet", ".pq": "parquet"}


@dataclass(frozen=True)
class ExportResult:
    """What :func:`export_tracks` wrote.

    Attributes
    ----------
    out : str
        The file (csv, json) or directory of Parquet parts (parquet).
    format : str
    rows : int
        Tracks written.
    cluster : int or None
        The exported cluster's id; None when every cluster was exported.
    cluster_name : str or None
    columns : tuple of str
    method : str or None
        The compared method whose labels chose the cluster; None for the run's clusters.
    """

    out: str
    format: str
    rows: int
    cluster: int | None
    cluster_name: str | None
    columns: tuple[str, ...]
    method: str | None = None


# --- choosing a cluster ------------------------------------------------------------------

def _normalize(name: str) -> str:
    # "Spoken Word · Danceable" -> "spoken word danceable": typeable on any keyboard.
    return " ".join(re.sub(r"[^0-9a-z]+", " ", name.casefold()).split())


def _words(name: str) -> tuple[str, ...]:
    # "Acoustic · Calm" and "calm acoustic" both give ("acoustic", "calm")
    return tuple(sorted(_normalize(name).split()))


def resolve_cluster(profiles: pd.DataFrame, cluster: int | str) -> tuple[int, str]:
    """The (id, name) of ``cluster``, given as an id or a name.

    Parameters
    ----------
    profiles : pandas.DataFrame
        ``summary/cluster_profiles`` (columns ``cluster`` and ``name``).
    cluster : int or str
        An id (``2`` or ``"2"``) or a name, matched case-insensitively; punctuation such as
        the ``·`` between words may be left out (``"spoken word danceable"``), and the words
        may come in any order (``"calm acoustic"`` finds "Acoustic · Calm").

    Returns
    -------
    tuple of (int, str)

    Raises
    ------
    InputError
        No such cluster; the message lists the ids and names there are.
    """
    ids = profiles[CLUSTER].astype(int).tolist()
    names = profiles["name"].astype(str).tolist()
    wanted = str(cluster).strip()
    if isinstance(cluster, (int, np.integer)) or re.fullmatch(r"[+-]?\d+", wanted):
        if int(wanted) in ids:
            i = ids.index(int(wanted))
            return ids[i], names[i]
    else:
        for key in (str.casefold, _normalize, _words):  # exact first, then looser
            hits = [i for i, n in enumerate(names) if key(n) == key(wanted)]
            if len(hits) == 1:
                return ids[hits[0]], names[hits[0]]
    choices = "; ".join(f"{i} {n}" for i, n in zip(ids, names, strict=True))
    raise InputError(f"unknown cluster {str(cluster)!r}; choose an id or a name: {choices}")


def _unscaled(part: pd.DataFrame, z: pd.DataFrame, names: list[str], mean: np.ndarray,
              std: np.ndarray) -> pd.DataFrame:
    if len(part) != len(z) or not (part[TRACK_ID].to_numpy() == z[TRACK_ID].to_numpy()).all():
        raise InputError("the run's assignments/ and query/ do not hold the same tracks in the "
                         "same order; was one of them rewritten?")
    values = z[names].to_numpy(dtype=np.float64) * std + mean
    return part.assign(**{n: values[:, j].astype(np.float32) for j, n in enumerate(names)})


def with_features(run: storage.Folder, frame: dd.DataFrame) -> dd.DataFrame:
    """``assignments/`` with each track's audio features in their own units, from the run's
    ``query/`` (z-scores, partition by partition the same rows) and its scaler; unchanged for
    a run without ``query/``."""
    if not run.exists("query") or not run.exists("model/model.json"):
        return frame
    model = run.read_json("model/model.json")
    z = dd.read_parquet(run.url("query"), storage_options=run.storage_options)
    names = [n for n in model["features"] if n in z.columns and n not in frame.columns]
    if not names or z.npartitions != frame.npartitions:
        return frame
    mean = np.asarray(model["scale_mean"], dtype=np.float64)[
        [model["features"].index(n) for n in names]]
    std = np.asarray(model["scale_std"], dtype=np.float64)[
        [model["features"].index(n) for n in names]]
    meta = frame._meta.assign(**{n: pd.Series(dtype=np.float32) for n in names})
    # joined as delayed pieces: the filter and sort that follow must not be pushed into one
    # side of the pair only, which would break the partition-by-partition alignment
    unscaled = dask.delayed(_unscaled)
    return dd.from_delayed([unscaled(a, b, names, mean, std) for a, b in
                            zip(frame.to_delayed(), z.to_delayed(), strict=True)],
                           meta=meta, verify_meta=False)


def by_typicality(frame: dd.DataFrame) -> dd.DataFrame:
    """Tracks by cluster, each cluster's nearest its centre first (by ``distance``)."""
    if DISTANCE not in frame.columns:
        return frame
    # one float key, so that dask sorts on one column: cluster ids are small integers and
    # distances (in standard deviations) far below the 1e6 between two clusters
    key = frame[CLUSTER].astype("float64") * 1e6 + frame[DISTANCE].astype("float64")
    return frame.assign(_typicality=key).sort_values("_typicality").drop(
        columns="_typicality")


# --- writing -----------------------------------------------------------------------------

def infer_format(out: str | os.PathLike) -> str:
    """The export format that ``out``'s suffix implies: csv, json or parquet (the default).

    Parameters
    ----------
    out : str or path-like

    Returns
    -------
    str
        ``.csv`` gives csv; ``.json``, ``.jsonl`` and ``.ndjson`` give json; anything else
        parquet.
    """
    return _SUFFIXES.get(Path(out).suffix.lower(), "parquet")


def local_out(out: str | os.PathLike) -> Path:
    """``out`` as a path on this machine; a URL is refused in one line (not made a folder)."""
    if "://" in os.fspath(out):
        raise InputError(f"--out {out}: exports are written on this machine; give a local "
                         "path (RUN itself may be a URL)")
    return Path(out).expanduser()


def _add_names(part: pd.DataFrame, names: np.ndarray, column: str = CLUSTER,
               name_column: str = CLUSTER_NAME) -> pd.DataFrame:
    codes = part[column].to_numpy(dtype="int64", na_value=-1)
    valid = (codes >= 0) & (codes < len(names))
    label = pd.array(np.where(valid, names[np.clip(codes, 0, len(names) - 1)], None),
                     dtype="string")
    out = part.copy()
    out.insert(out.columns.get_loc(column) + 1, name_column, label)
    return out


def _names_by_id(profiles: pd.DataFrame) -> np.ndarray:
    clusters = profiles[profiles[CLUSTER] >= 0]  # a method's noise (-1) keeps no name
    names = np.full(int(clusters[CLUSTER].to_numpy().max(initial=-1)) + 1, None, dtype=object)
    names[clusters[CLUSTER].to_numpy()] = clusters["name"].to_numpy()
    return names


def _write_part(part: pd.DataFrame, path: str, fmt: str, header: bool) -> int:
    with open(path, "w", encoding="utf-8", newline="") as handle:
        if fmt == "csv":
            part.to_csv(handle, index=False, header=header)
            return len(part)
        # In slices: pandas builds the whole JSON text in memory, several times its size.
        for start in range(0, len(part), _JSON_ROWS):
            text = part.iloc[start:start + _JSON_ROWS].to_json(
                orient="records", lines=True, date_format="iso", force_ascii=False)
            handle.write(text if text.endswith("\n") else text + "\n")
    return len(part)


def _text_rows(frame: dd.DataFrame, path: Path, fmt: str) -> int:
    # Each partition is written to its own file in parallel, then the files are joined in
    # order. dask's to_csv(single_file=True) chains the writes instead, and its scheduler
    # then reads every partition ahead of the slow writes: memory grows to the whole table.
    parts = path.with_name(path.name + ".parts")
    parts.mkdir()
    try:
        write = dask.delayed(_write_part, pure=False)
        pieces = frame.optimize().to_delayed()  # optimizing may change the partition count
        files = [str(parts / f"{i:06d}") for i in range(len(pieces))]
        counts = dask.compute(*(write(piece, name, fmt, i == 0) for i, (piece, name) in
                                enumerate(zip(pieces, files, strict=True))))
        with open(path, "wb") as joined:
            for name in files:
                with open(name, "rb") as handle:
                    shutil.copyfileobj(handle, joined, 16 << 20)
    finally:
        shutil.rmtree(parts, ignore_errors=True)
    return int(sum(counts))


def _parquet_rows(frame: dd.DataFrame, path: Path) -> int:
    frame.to_parquet(str(path), write_index=False)
    # Row counts are in each part's footer: no pass over the data.
    return sum(pq.ParquetFile(p).metadata.num_rows for p in path.glob("*.parquet"))


def export_tracks(run_dir: str | os.PathLike, out: str | os.PathLike, *,
                  cluster: int | str | None = None, format: str = "parquet",
                  overwrite: bool = False, method: str | None = None,
                  storage_options: dict | None = None) -> ExportResult:
    """Write the tracks of one cluster (or of all) with their cluster name.

    Parameters
    ----------
    run_dir : str or path-like
        A run directory written by ``sonicatlas run cluster-tracks``: a local path or any
        fsspec URL.
    out : str or path-like
        A local file (csv, json) or directory (parquet) to create; missing parent
        directories are made.
    cluster : int, str or None
        The cluster's id (``2`` or ``"2"``) or name (see :func:`resolve_cluster`); None
        exports every track.
    format : {"parquet", "csv", "json"}
        ``json`` is JSON Lines: one object per line, so readers can stream it.
    overwrite : bool
        Replace an existing ``out``, if it is an export (:func:`~.provenance.is_export`).
    method : str, optional
        A method the run compared (``gmm``, ``dbscan``, ...): ``cluster`` is one of its
        clusters (id, ``-1`` for noise, or name from ``summary/cluster_profiles_<method>``),
        chosen by the ``cluster_<method>`` column, which gets ``cluster_<method>_name`` beside
        it.
    storage_options : dict, optional
        fsspec options for ``run_dir`` (``out`` is on this machine).

    Returns
    -------
    ExportResult

    Raises
    ------
    InputError
        ``run_dir`` is not a run, ``cluster`` is unknown or ``format`` is not supported;
        checked before anything is written.
    OutputExistsError
        ``out`` exists and ``overwrite`` is false, or it is not an export.

    Notes
    -----
    The columns are those of ``assignments/`` with ``cluster_name`` after ``cluster``, then
    the audio features in their own units (:func:`with_features`); tracks come by cluster,
    the most typical (nearest the cluster's centre) first; by a ``method``'s labels they keep
    the order of ``assignments/``. Dask reads, filters and writes
    partition by partition in parallel on the current scheduler (a distributed Client if one
    is active, whose workers must then see ``out``'s file system), so memory holds a few
    partitions at a time and nothing is collected on the client. Text formats are written as
    one file per partition beside ``out`` and then joined into one.
    """
    if format not in FORMATS:
        raise InputError(f"unknown format {format!r}; choose one of {', '.join(FORMATS)}")
    out = local_out(out)
    run = run_folder(run_dir, storage_options)
    profiles = read_profiles(run)
    labels = read_profiles(run, method) if method is not None else profiles
    chosen, name = resolve_cluster(labels, cluster) if cluster is not None else (None, None)
    fs, target = storage.resolve(out)
    storage.check_target(fs, target, str(out), overwrite, is_export, EXPORT_KIND)

    frame = with_features(run, dd.read_parquet(run.url("assignments"),
                                               storage_options=run.storage_options))
    column = CLUSTER if method is None else method_cluster(method)
    if chosen is not None:
        frame = frame[frame[column] == chosen]
    if method is None:
        frame = by_typicality(frame)
    names = _names_by_id(profiles)
    frame = frame.map_partitions(_add_names, names, meta=_add_names(frame._meta, names))
    if method is not None:
        names = _names_by_id(labels)
        extra = (column, f"{column}_name")
        frame = frame.map_partitions(_add_names, names, *extra,
                                     meta=_add_names(frame._meta, names, *extra))

    with storage.replacing(fs, target) as partial:
        if format == "parquet":
            rows = _parquet_rows(frame, Path(partial))
        else:
            rows = _text_rows(frame, Path(partial), format)
    return ExportResult(str(out), format, rows, chosen, name, tuple(frame.columns), method)
