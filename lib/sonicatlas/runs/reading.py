"""Find a finished run directory and read its manifest and cluster profiles.

Used by the exports, the summary page and the notebooks. A run directory is one that holds
``manifest.json`` and ``assignments/``; hidden (partial) runs are never found.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from sonicatlas import storage
from sonicatlas.contract import CLUSTER
from sonicatlas.errors import InputError

#: Where :func:`find_run` looks for runs, relative to the working directory or a parent.
RUNS = "runs"
RUN_ENV = "SONICATLAS_RUN"


def run_folder(run_dir: str | os.PathLike | storage.Folder,
               storage_options: dict | None = None) -> storage.Folder:
    """``run_dir`` (a local path or any fsspec URL), after checking it holds a run.

    Raises
    ------
    InputError
        Nothing is there, it is not a run (no manifest and assignments), or it cannot be
        read (no such bucket, no permission); one line naming ``run_dir``.
    """
    if isinstance(run_dir, storage.Folder):
        return run_dir
    with storage.reading(str(run_dir)):
        run = storage.Folder.at(run_dir, storage_options)
        found = run.fs.isfile(run.path("manifest.json")) and run.fs.isdir(
            run.path("assignments"))
        there = found or run.exists("")
    if not there:
        raise InputError(f"no run directory at {run_dir}: nothing is there")
    if not found:
        raise InputError(f"{run_dir} is not a run directory (no manifest.json and "
                         "assignments/); make one with `sonicatlas run cluster-tracks`")
    return run


def read_manifest(run_dir: str | os.PathLike | storage.Folder,
                  storage_options: dict | None = None) -> dict:
    """The run's ``manifest.json``.

    Parameters
    ----------
    run_dir : str, path-like or storage.Folder
        A run directory written by ``sonicatlas run``: a local path or any fsspec URL.
    storage_options : dict, optional
        fsspec options for ``run_dir``.

    Returns
    -------
    dict

    Raises
    ------
    InputError
        ``run_dir`` is not a run directory.
    """
    return run_folder(run_dir, storage_options).read_json("manifest.json")


def read_profiles(run_dir: str | os.PathLike | storage.Folder, method: str | None = None,
                  storage_options: dict | None = None) -> pd.DataFrame:
    """The run's ``summary/cluster_profiles``, one row per cluster, sorted by id.

    Parameters
    ----------
    run_dir : str, path-like or storage.Folder
    method : str, optional
        A compared method: its ``summary/cluster_profiles_<method>`` instead.
    storage_options : dict, optional
        fsspec options for ``run_dir``.

    Returns
    -------
    pandas.DataFrame

    Raises
    ------
    InputError
        ``method`` was not compared in this run; the message names those that were.
    """
    run = run_folder(run_dir, storage_options)
    name = "cluster_profiles" if method is None else f"cluster_profiles_{method}"
    table = run.read_table(f"summary/{name}")
    if table is None and method is not None:
        compared = [n.removeprefix("cluster_profiles_") for n in run.listdir("summary")
                    if n.startswith("cluster_profiles_")]
        raise InputError(f"the run at {run_dir} has no labels of method {method!r}; "
                         + (f"it compared: {', '.join(compared)}" if compared else
                            "it compared no methods (set compare: in the config)"))
    if table is None:
        raise InputError(f"the run at {run_dir} has no summary/cluster_profiles; re-run "
                         "`sonicatlas run cluster-tracks`")
    return table.sort_values(CLUSTER, ignore_index=True)


def find_run(run_dir: str | os.PathLike | None = None, root: str | os.PathLike | None = None
             ) -> Path | str:
    """The run directory to look at: given, else ``$SONICATLAS_RUN``, else the newest run.

    Parameters
    ----------
    run_dir : str, path-like or None
        Used as is when given (a local path, or an fsspec URL, returned as the URL).
    root : str, path-like or None
        Directory holding runs. Default: ``runs/`` in the working directory or the nearest
        parent that has one (so that notebooks in ``notebooks/`` find the project's runs).

    Returns
    -------
    pathlib.Path or str
        A complete run directory (one with ``manifest.json``); the newest is the one whose
        manifest was written last. Hidden (partial) runs are skipped.

    Raises
    ------
    InputError
        No run was given and none was found.
    """
    if run_dir is None:
        run_dir = os.environ.get(RUN_ENV) or None
    if run_dir is not None:
        run = run_folder(run_dir)
        return Path(run_dir).expanduser() if storage.is_local(run.fs) else str(run_dir)
    roots = [Path(root)] if root is not None else \
        [p / RUNS for p in (Path.cwd(), *Path.cwd().parents)]
    for base in roots:
        manifests = [p for p in base.glob("*/manifest.json") if not p.parent.name.startswith(".")]
        if manifests:
            return max(manifests, key=lambda p: p.stat().st_mtime).parent
    raise InputError(f"no run directory found under {RUNS}/; pass one, set {RUN_ENV}, or "
                     "make one with `sonicatlas run cluster-tracks`")
