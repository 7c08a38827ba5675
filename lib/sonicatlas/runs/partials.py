"""Who owns a partial run, and removing the partial runs whose owner is gone.

A run is written into ``.<name>.partial-<id>`` beside its target (:mod:`.directory`). A client
killed outright (SIGKILL, a lost machine) cannot remove it, so each partial run records its
owner in ``.owner.json``: process id, host and the process's start time (a process id alone
may have been reused). A later run in the same parent directory (on a local disk or an object
store, listed through fsspec) removes the partial runs
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


def _entries(fs, parent: str) -> list[tuple[str, str, bool]]:
    """``(name, path, is a directory)`` of what ``parent`` holds; nothing if it does not exist.

    Links are not followed on a local disk. On an object store a directory is a prefix.
    """
    if storage.is_local(fs):
        if not os.path.isdir(parent or "."):
            return []
        return [(e.name, posixpath.join(parent, e.name) if parent else e.name,
                 e.is_dir(follow_symlinks=False)) for e in os.scandir(parent or ".")]
    fs.invalidate_cache(parent)  # another client may have written here since it was listed
    try:
        listed = fs.ls(parent, detail=True)
    except (FileNotFoundError, NotADirectoryError):
        return []
    found = []
    for item in listed:
        path = item["name"].rstrip("/")
        if path != parent:
            found.append((posixpath.basename(path), path, item["type"] == "directory"))
    return found


def sweep_partials(fs, parent: str) -> Sweep:
    """Remove the partial runs in ``parent`` whose owner on this host is gone.

    Parameters
    ----------
    fs : fsspec.AbstractFileSystem
        A local disk or an object store: the partial runs beside the target are listed and
        their ``.owner.json`` read through it alike.
    parent : str
        The directory the new run is written into.

    Returns
    -------
    Sweep
        ``removed`` and ``left`` name the partial runs as the user gave the target: a path
        on a local disk, else a URL. ``left`` holds one line per partial run that could not
        be judged, naming it and why.
    """
    removed, left = [], []
    for name, path, is_dir in sorted(_entries(fs, parent)):
        shown = path if storage.is_local(fs) else fs.unstrip_protocol(path)
        aside = _MOVED_ASIDE.match(name)
        if aside:  # only there if a replacing run was killed between its two renames
            left.append(f"{shown}: an old {aside['name']} moved aside while a new one was put "
                        f"in place; if {aside['name']} is missing, move it back")
            continue
        if not _PARTIAL.match(name) or not is_dir:
            continue
        record = _read_owner(fs, path)
        alive = None if record is None else owner_alive(record)
        if alive is False:
            storage.remove(fs, path)
            removed.append(shown)
        elif record is None:
            left.append(f"partial run {shown} (no owner recorded: an export or catalog being "
                        "written, or a run of an older version); remove it once nothing "
                        "writes it")
        elif alive is None:
            left.append(f"partial run {shown} (owned by pid {record['pid']} on "
                        f"{record['host']}, started {record.get('started', '?')}: another "
                        "host); remove it once that run has ended")
    return Sweep(removed, left)
