"""Who owns a partial run, and removing the partial runs whose owner is gone.

A run is written into ``.<name>.partial-<id>`` beside its target (:mod:`.directory`). A client
killed outright (SIGKILL, a lost machine) cannot remove it, so each partial run records its
owner in ``.owner.json``: process id, host and the process's start time (a process id alone
may have been reused). A later run in the same parent directory removes the partial runs
whose owner was on this host and is gone, and names those it cannot judge: an owner on
another host, or no owner record at all (an export or catalog being written, or a partial
left by an older version), and any old output left moved aside by a replacement killed
between its two renames. The record is removed before a run is moved into place.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import posixpath
import re
import socket
from dataclasses import dataclass

import psutil

from sonicatlas import storage

OWNER_FILE = ".owner.json"
_PARTIAL = re.compile(r"^\..+\.partial-[0-9a-f]{8}$")
_MOVED_ASIDE = re.compile(r"^\.(?P<name>.+)\.old-[0-9a-f]{8}$")
_SAME_START = 1.0  # seconds: start times are compared to the clock tick


def owner_record(pid: int | None = None) -> dict:
    """The owner of a partial run started by process ``pid`` (default: this one).

    Returns
    -------
    dict
        ``pid``, ``host``, ``process_started`` (seconds since the epoch) and ``started``
        (the same, ISO 8601 in UTC, for people).
    """
    process = psutil.Process(pid or os.getpid())
    started = process.create_time()
    return {"pid": process.pid, "host": socket.gethostname(), "process_started": started,
            "started": dt.datetime.fromtimestamp(started, dt.UTC).isoformat(timespec="seconds")}


def record_owner(fs, partial: str) -> None:
    """Write this process's :func:`owner_record` into the partial run ``partial``."""
    with fs.open(posixpath.join(partial, OWNER_FILE), "w") as handle:
        json.dump(owner_record(), handle)


def forget_owner(fs, partial: str) -> None:
    """Remove the owner record before the finished run is moved into place."""
    storage.remove(fs, posixpath.join(partial, OWNER_FILE))


def owner_alive(record: dict) -> bool | None:
    """Whether a partial run's owner still runs: True, False, or None when this host cannot tell.

    Parameters
    ----------
    record : dict
        As written by :func:`record_owner`.
    """
    if record.get("host") != socket.gethostname():
        return None
    try:
        process = psutil.Process(int(record["pid"]))
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        return abs(process.create_time() - float(record["process_started"])) < _SAME_START
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True  # a process of another user, with that id: assume it is the owner


@dataclass(frozen=True)
class Sweep:
    """What :func:`sweep_partials` did: the partial runs removed and those left, with why."""

    removed: list[str]
    left: list[str]


def _read_owner(fs, partial: str) -> dict | None:
    try:
        with fs.open(posixpath.join(partial, OWNER_FILE), "r") as handle:
            record = json.load(handle)
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and {"pid", "host"} <= record.keys() else None


def sweep_partials(fs, parent: str) -> Sweep:
    """Remove the partial runs in ``parent`` whose owner on this host is gone.

    Parameters
    ----------
    fs : fsspec.AbstractFileSystem
        Only a local file system is swept; elsewhere nothing is done.
    parent : str
        The directory the new run is written into.

    Returns
    -------
    Sweep
        ``left`` holds one line per partial run that could not be judged, naming it and why.
    """
    removed, left = [], []
    if not storage.is_local(fs) or not os.path.isdir(parent or "."):
        return Sweep(removed, left)
    for entry in sorted(os.scandir(parent or "."), key=lambda e: e.name):
        path = posixpath.join(parent, entry.name) if parent else entry.name
        aside = _MOVED_ASIDE.match(entry.name)
        if aside:  # only there if a replacing run was killed between its two renames
            left.append(f"{path}: an old {aside['name']} moved aside while a new one was put "
                        f"in place; if {aside['name']} is missing, move it back")
            continue
        if not _PARTIAL.match(entry.name) or not entry.is_dir(follow_symlinks=False):
            continue
        record = _read_owner(fs, path)
        alive = None if record is None else owner_alive(record)
        if alive is False:
            storage.remove(fs, path)
            removed.append(path)
        elif record is None:
            left.append(f"partial run {path} (no owner recorded: an export or catalog being "
                        "written, or a run of an older version); remove it once nothing "
                        "writes it")
        elif alive is None:
            left.append(f"partial run {path} (owned by pid {record['pid']} on "
                        f"{record['host']}, started {record.get('started', '?')}: another "
                        "host); remove it once that run has ended")
    return Sweep(removed, left)
