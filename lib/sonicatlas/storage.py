"""Atomic outputs: build a file or directory in a hidden sibling, then move it into place.

Every writer of the project (run directories, exports, generated catalogs and logs, ingested
catalogs) writes ``.<name>.partial-<id>`` beside its target and renames it onto the target
only when it is complete; on failure the sibling is removed. So a target that exists is a
whole one, and an old target is replaced only by a complete new one. Paths are local paths or
any fsspec URL: on a local file system the move is a ``rename`` (atomic on one file system),
elsewhere ``fs.mv``.
"""

from __future__ import annotations

import contextlib
import json
import os
import posixpath
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import fsspec
from fsspec.implementations.local import LocalFileSystem

from sonicatlas.errors import OutputExistsError


def resolve(url: str | os.PathLike, storage_options: dict | None = None):
    """``(filesystem, path)`` of a local path or fsspec URL, without a trailing slash.

    Parameters
    ----------
    url : str or path-like
    storage_options : dict, optional
        Passed to fsspec.

    Returns
    -------
    tuple of (fsspec.AbstractFileSystem, str)
    """
    fs, path = fsspec.core.url_to_fs(os.fspath(url), **(storage_options or {}))
    return fs, path.rstrip("/") or path


@dataclass(frozen=True)
class Folder:
    """A directory on any file system, its files named relative to it: what the readers of
    a run (exports, summary page, reports) share, so that a run on a bucket reads as a local one.

    Attributes
    ----------
    fs : fsspec.AbstractFileSystem
    root : str
        The directory in ``fs``'s terms (an absolute path on a local disk).
    storage_options : dict
        The fsspec options ``fs`` was made with, for readers that take URLs (dask).
    """

    fs: object
    root: str
    storage_options: dict = field(default_factory=dict)

    @classmethod
    def at(cls, url: str | os.PathLike, storage_options: dict | None = None) -> Folder:
        """The folder at a local path (``~`` expanded) or fsspec URL."""
        fs, root = resolve(os.path.expanduser(os.fspath(url)), storage_options)
        fs.invalidate_cache(root)  # listings cached in this process before others wrote here
        return cls(fs, root, dict(storage_options or {}))

    @property
    def name(self) -> str:
        return posixpath.basename(self.root)

    def path(self, name: str = "") -> str:
        """``name`` inside the folder, in ``fs``'s terms."""
        return f"{self.root}/{name}" if name else self.root

    def url(self, name: str = "") -> str:
        """``name`` as a local path or a URL: what people, pandas and dask are given."""
        path = self.path(name)
        return path if is_local(self.fs) else self.fs.unstrip_protocol(path)

    def exists(self, name: str) -> bool:
        return self.fs.exists(self.path(name))

    def listdir(self, name: str = "") -> list[str]:
        """Names in the sub-folder ``name``, hidden ones left out, sorted; none if absent."""
        if not self.fs.isdir(self.path(name)):
            return []
        names = (p.rstrip("/").rsplit("/", 1)[-1] for p in
                 self.fs.ls(self.path(name), detail=False))
        return sorted(n for n in names if not n.startswith("."))

    def read_bytes(self, name: str) -> bytes:
        return self.fs.cat_file(self.path(name))

    def read_json(self, name: str):
        return json.loads(self.read_bytes(name))

    def read_table(self, name: str):
        """The Parquet table (file or directory) at ``name``, or None where there is none."""
        import pandas as pd

        if not self.exists(name):
            return None
        return pd.read_parquet(self.path(name), filesystem=self.fs)

    def write_text(self, name: str, text: str) -> str:
        """Write ``name`` (UTF-8); return its :meth:`url`."""
        with self.fs.open(self.path(name), "w", encoding="utf-8") as handle:
            handle.write(text)
        return self.url(name)


@contextlib.contextmanager
def reading(shown: str) -> Iterator[None]:
    """Turn a file system's error while reading ``shown`` into one line for the user.

    No such bucket, no credentials or permission, a malformed URL, a protocol whose fsspec
    package is not installed: :class:`~sonicatlas.errors.InputError` naming ``shown``.
    Keep the block to the reads that locate a thing: any error there is about reaching it.
    """
    from sonicatlas.errors import InputError

    try:
        yield
    except ImportError as error:  # fsspec: "Install s3fs to access S3"
        raise InputError(f"cannot read {shown}: {error}") from None
    except Exception as error:  # OSError, or an object store's own (no credentials)
        raise InputError(f"cannot read {shown}: {error.__class__.__name__}: {error}"
                         ) from None


def hidden_sibling(path: str, role: str = "partial") -> str:
    """A unique hidden path beside ``path``: ``.<name>.<role>-<8 hex digits>``.

    Readers of a directory of runs or catalogs skip names that start with a dot.
    """
    parent, name = posixpath.split(path.rstrip("/"))
    return posixpath.join(parent, f".{name}.{role}-{uuid.uuid4().hex[:8]}")


def exists(fs, path: str) -> bool:
    """Whether anything is at ``path``, a dangling local symbolic link included."""
    if is_local(fs):
        return os.path.lexists(path)
    return fs.exists(path)


def occupied(fs, path: str) -> bool:
    """Whether ``path`` holds something other than an empty directory."""
    return exists(fs, path) and (not fs.isdir(path) or bool(fs.ls(path, detail=False)))


def check_target(fs, path: str, shown: str, overwrite: bool, ours, kind: str) -> None:
    """Refuse, before any work, to write onto ``path`` unless it is free or may be replaced.

    Parameters
    ----------
    fs : fsspec.AbstractFileSystem
    path : str
        The target, in ``fs``'s terms.
    shown : str
        The target as the user wrote it, for the message.
    overwrite : bool
        Whether the user asked to replace an existing target.
    ours : callable
        ``ours(fs, path)``: whether what is at ``path`` is something sonicatlas wrote of this
        kind. Only that is ever replaced: ``--overwrite`` on a user's own directory or file
        would otherwise delete it.
    kind : str
        What ``ours`` recognises, e.g. "sonicatlas run directory", for the message.

    Raises
    ------
    OutputExistsError
        Something is at ``path`` and ``overwrite`` is false, or it is not ``ours``.
    """
    if not exists(fs, path):
        return
    if not overwrite:
        raise OutputExistsError(f"{shown} already exists; choose another --out or pass "
                                "--overwrite")
    if not ours(fs, path):
        raise OutputExistsError(f"{shown} is not a {kind}; --overwrite replaces only that, so "
                                "it was left untouched: choose another --out")


def is_local(fs) -> bool:
    """Whether ``fs`` is this machine's file system."""
    return isinstance(fs, LocalFileSystem)


def remove(fs, path: str) -> None:
    """Remove a file, link (not what it points to) or directory tree at ``path``, if any."""
    if exists(fs, path):
        fs.rm(path, recursive=True)


#: A directory holding this file is taken as whole by its readers (a run's manifest, written
#: last): where a move copies file by file, it is copied last and removed first.
MARKER = "manifest.json"


def _move(fs, source: str, target: str) -> None:
    if is_local(fs):
        os.replace(source, target)  # atomic on one file system
    elif not fs.isdir(source):
        fs.mv(source, target)
    else:
        # An object store has no rename: each file is copied, then the source removed.
        # (fs.mv(recursive=True) also copies the folders' names, keys object stores lack.)
        fs.invalidate_cache(source)  # the workers wrote there: list what is there now
        files = sorted(fs.find(source), key=lambda f: f == f"{source}/{MARKER}")
        fs.copy(files, [target + f[len(source):] for f in files])
        if fs.isfile(f"{source}/{MARKER}"):
            fs.rm(f"{source}/{MARKER}")
        fs.rm(source, recursive=True)


def move_into_place(fs, partial: str, path: str) -> None:
    """Move the finished ``partial`` onto ``path``, replacing what is there only on success.

    An old ``path`` is first moved aside (a rename cannot replace a directory that has
    contents, and moving onto a directory would nest inside it); it is put back if the move
    fails and removed once the new one is in place.
    """
    old = None
    if exists(fs, path):
        old = hidden_sibling(path, "old")
        _move(fs, path, old)
    try:
        _move(fs, partial, path)
    except BaseException:
        if old is not None:
            _move(fs, old, path)
        raise
    if old is not None:
        remove(fs, old)


@contextlib.contextmanager
def replacing(fs, path: str, partial: str | None = None) -> Iterator[str]:
    """Yield a hidden sibling of ``path`` to write; move it onto ``path`` if the block succeeds.

    Parameters
    ----------
    fs : fsspec.AbstractFileSystem
    path : str
        The target, in ``fs``'s terms (see :func:`resolve`). Its parent directory is made.
    partial : str, optional
        The sibling to use; default a new :func:`hidden_sibling`. Nothing is created there:
        the block writes a file or a directory as it needs.

    Yields
    ------
    str
        The partial path, in ``fs``'s terms (``fs.unstrip_protocol`` makes it a URL).

    Notes
    -----
    Whatever the block raises (``KeyboardInterrupt`` included), the partial path is removed
    and ``path`` is left as it was.
    """
    partial = partial or hidden_sibling(path)
    parent = posixpath.dirname(path)
    if parent:
        fs.makedirs(parent, exist_ok=True)
    try:
        yield partial
        move_into_place(fs, partial, path)
    finally:
        remove(fs, partial)  # only there if something failed


def check_writable(fs, path: str, shown: str) -> None:
    """Fail in one line, before any work, where nothing can be written beside ``path``.

    Makes ``path``'s parent and writes and removes a hidden file there (a read-only file
    system, a parent that is a file, no permission). Off this machine the path's first part
    (an object store's bucket) must exist: making it would create a bucket from a typo.

    Raises
    ------
    sonicatlas.errors.InputError
        Naming ``shown`` and the system's reason.
    """
    from sonicatlas.errors import InputError

    probe = hidden_sibling(path, "probe")
    top = path[:len(path) - len(path.lstrip("/"))] + path.lstrip("/").split("/", 1)[0]
    try:
        missing = not is_local(fs) and "/" in path.strip("/") and not fs.exists(top)
        if not missing:
            fs.makedirs(posixpath.dirname(path) or ".", exist_ok=True)
            fs.touch(probe)
            fs.rm(probe)
    except Exception as e:  # OSError, or an object store's own (no credentials)
        reason = getattr(e, "strerror", None) or str(e) or e.__class__.__name__
        raise InputError(f"cannot write {shown}: {reason}") from None
    if missing:
        raise InputError(f"cannot write {shown}: there is no bucket (or top folder) "
                         f"{top.lstrip('/')!r}; create it first")
