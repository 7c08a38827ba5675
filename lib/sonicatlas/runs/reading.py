"""Find a finished run directory and read its manifest and cluster profiles.

Used by the exports, the summary page and the notebooks. A run directory is one that holds
``manifest.json`` and ``assignments/``; hidden (partial) runs are never found.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd

from sonicatlas.contract import CLUSTER
from sonicatlas.errors import InputError

#: Where :func:`find_run` looks for runs, relative to the working directory or a parent.
RUNS = "runs"
RUN_ENV = "SONICATLAS_RUN"


def run_path(run_dir: str | os.PathLike) -> Path:
    """``run_dir`` as a Path, after checking it holds a run (manifest and assignments)."""
    run = Path(run_dir).expanduser()
    if not (run / "manifest.json").is_file() or not (run / "assignments").is_dir():
        raise InputError(f"{run_dir} is not a run directory (no manifest.json and "
                         "assignments/); make one with `sonicatlas run cluster-tracks`")
    return run


def read_manifest(run_dir: str | os.PathLike) -> dict:
    """The run's ``manifest.json``.

    Parameters
    ----------
    run_dir : str or path-like
        A run directory written by ``sonicatlas run``.

    Returns
    -------
    dict

    Raises
    ------
    InputError
        ``run_dir`` is not a run directory.
    """
    return json.loads((run_path(run_dir) / "manifest.json").read_text())


def read_profiles(run_dir: str | os.PathLike, method: str | None = None) -> pd.DataFrame:
    """The run's ``summary/cluster_profiles``, one row per cluster, sorted by id.

    Parameters
    ----------
    run_dir : str or path-like
    method : str, optional
        A compared method: its ``summary/cluster_profiles_<method>`` instead.

    Returns
    -------
    pandas.DataFrame

    Raises
    ------
    InputError
        ``method`` was not compared in this run; the message names those that were.
    """
    summary = run_path(run_dir) / "summary"
    name = "cluster_profiles" if method is None else f"cluster_profiles_{method}"
    if method is not None and not (summary / name).exists():
        compared = sorted(p.name.removeprefix("cluster_profiles_")
                          for p in summary.glob("cluster_profiles_*"))
        raise InputError(f"the run at {run_dir} has no labels of method {method!r}; "
                         + (f"it compared: {', '.join(compared)}" if compared else
                            "it compared no methods (set compare: in the config)"))
    table = pd.read_parquet(summary / name)
    return table.sort_values(CLUSTER, ignore_index=True)


def find_run(run_dir: str | os.PathLike | None = None, root: str | os.PathLike | None = None
             ) -> Path:
    """The run directory to look at: given, else ``$SONICATLAS_RUN``, else the newest run.

    Parameters
    ----------
    run_dir : str, path-like or None
        Used as is when given.
    root : str, path-like or None
        Directory holding runs. Default: ``runs/`` in the working directory or the nearest
        parent that has one (so that notebooks in ``notebooks/`` find the project's runs).

    Returns
    -------
    pathlib.Path
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
        return run_path(run_dir)
    roots = [Path(root)] if root is not None else \
        [p / RUNS for p in (Path.cwd(), *Path.cwd().parents)]
    for base in roots:
        manifests = [p for p in base.glob("*/manifest.json") if not p.parent.name.startswith(".")]
        if manifests:
            return max(manifests, key=lambda p: p.stat().st_mtime).parent
    raise InputError(f"no run directory found under {RUNS}/; pass one, set {RUN_ENV}, or "
                     "make one with `sonicatlas run cluster-tracks`")
