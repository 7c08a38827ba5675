"""Whether an existing output is one that sonicatlas wrote, so that ``--overwrite`` may replace it.

``--overwrite`` replaces only these; anything else at ``--out`` (a user's directory, a home
directory, a file of theirs) is refused untouched (:func:`sonicatlas.storage.check_target`).
Each kind is recognised by what is inside it, so outputs of earlier versions count too:

- a run directory: its ``manifest.json`` is a JSON object naming the ``job`` and the
  ``sonicatlas`` version that wrote it (every job's manifest does);
- an export of tracks: a CSV file whose header, or a JSON Lines file whose first object, has
  the ``cluster`` and ``cluster_name`` columns; a directory of Parquet parts (and nothing
  else) whose schema has them; or an empty file (an export of no rows, nothing to lose);
- a run summary page: a markdown file that starts with ``# Run ``.
"""

from __future__ import annotations

import csv
import json
import posixpath

import pyarrow as pa
import pyarrow.parquet as pq

from sonicatlas.contract import CLUSTER, CLUSTER_NAME

#: the kinds, as the refusal names them
RUN_KIND = "sonicatlas run directory (one whose manifest.json a sonicatlas job wrote)"
EXPORT_KIND = "sonicatlas export (a file or Parquet directory with cluster and cluster_name)"
SUMMARY_KIND = "sonicatlas run summary (a markdown file starting with '# Run ')"

_EXPORT_COLUMNS = {CLUSTER, CLUSTER_NAME}
_PARQUET_SIDE_FILES = {"_metadata", "_common_metadata"}
_FIRST_LINE_BYTES = 1 << 20


def is_run_directory(fs, path: str) -> bool:
    """Whether ``path`` is a run directory a sonicatlas job wrote (see the module notes).

    Parameters
    ----------
    fs : fsspec.AbstractFileSystem
    path : str

    Returns
    -------
    bool
    """
    try:
        if not fs.isdir(path):
            return False
        with fs.open(posixpath.join(path, "manifest.json"), "r") as handle:
            manifest = json.load(handle)
    except (OSError, ValueError):
        return False
    return (isinstance(manifest, dict) and isinstance(manifest.get("job"), str)
            and isinstance(manifest.get("versions"), dict)
            and "sonicatlas" in manifest["versions"])


def _first_line(fs, path: str) -> str | None:
    with fs.open(path, "rb") as handle:
        line = handle.readline(_FIRST_LINE_BYTES)
    return line.decode("utf-8").rstrip("\r\n") if line else None


def is_export(fs, path: str) -> bool:
    """Whether ``path`` is a track export sonicatlas wrote (see the module notes).

    Parameters
    ----------
    fs : fsspec.AbstractFileSystem
    path : str

    Returns
    -------
    bool
    """
    try:
        if fs.isdir(path):
            names = [posixpath.basename(p) for p in fs.ls(path, detail=False)]
            parts = [n for n in names if n.endswith(".parquet")]
            if not parts or set(names) - set(parts) - _PARQUET_SIDE_FILES:
                return False
            return all(_EXPORT_COLUMNS <= set(pq.read_schema(
                fs.open(posixpath.join(path, n), "rb")).names) for n in parts)
        line = _first_line(fs, path)
        if line is None:
            return True
        if line.startswith("{"):
            record = json.loads(line)
            return isinstance(record, dict) and _EXPORT_COLUMNS <= record.keys()
        return _EXPORT_COLUMNS <= set(next(csv.reader([line])))
    except (OSError, ValueError, pa.ArrowException):
        return False


def is_run_summary(fs, path: str) -> bool:
    """Whether ``path`` is a run summary page sonicatlas wrote (see the module notes)."""
    try:
        line = None if fs.isdir(path) else _first_line(fs, path)
    except (OSError, ValueError):
        return False
    return line is not None and line.startswith("# Run ")
