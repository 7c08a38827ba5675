"""The run directory: written into a hidden sibling, moved into place only when complete.

A failed run removes its partial directory, so a run directory that exists is a whole one.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import platform
import posixpath
from collections.abc import Iterator
from importlib import metadata

import dask.dataframe as dd
import pandas as pd

from sonicatlas import storage
from sonicatlas.contract import TRACK_ID
from sonicatlas.runs.partials import forget_owner, record_owner, sweep_partials
from sonicatlas.runs.provenance import RUN_KIND, is_run_directory

_VERSIONED = ("sonicatlas", "dask", "distributed", "dask-ml", "scikit-learn", "pandas",
              "numpy", "pyarrow", "datashader")
_FAILED_WRITES_WAIT = 30.0


def default_run_name(job: str) -> str:
    """``runs/<job>-<UTC timestamp>``, unique to the second."""
    return f"runs/{job}-{dt.datetime.now(dt.UTC):%Y%m%d-%H%M%S}"


class RunDirectory:
    """A run directory under construction; ``path`` is where parts are written meanwhile.

    Use :func:`open_run` rather than constructing one.
    """

    def __init__(self, final: str, storage_options: dict | None = None):
        self.storage_options = storage_options or {}
        self.fs, self.final = storage.resolve(final, self.storage_options)
        self.partial = storage.hidden_sibling(self.final)
        self.url = final
        self._writing: list = []  # futures of background writes, in the order started

    @property
    def is_local(self) -> bool:
        """Whether the run is written to this machine's file system."""
        return storage.is_local(self.fs)

    @property
    def location(self) -> str:
        """Where the run will be once complete: a local path, else a URL."""
        return self.final if self.is_local else self.fs.unstrip_protocol(self.final)

    @property
    def path(self) -> str:
        """URL of the partial directory, for writers that take URLs."""
        return self.fs.unstrip_protocol(self.partial)

    def write_table(self, name: str, table: pd.DataFrame | dd.DataFrame,
                    background: bool = False) -> None:
        """Write a table: pandas as one file, dask as a directory of parts.

        Parameters
        ----------
        name : str
            Path of the table inside the run directory.
        table : pandas.DataFrame or dask.dataframe.DataFrame
        background : bool
            For a dask table: start the write on the workers and return at once. Its tasks
            run at a lower priority than other work, so they fill the workers' idle time
            while the client does its own (maps, report); :meth:`wait_for_writes` waits for
            them, and :func:`job_session` never commits a run before they have finished.
        """
        target = f"{self.path}/{name}"
        if isinstance(table, dd.DataFrame):
            # Row-group statistics for numbers only: min/max of unique text (ids, titles)
            # prune nothing and cost write time. Values that seldom repeat (computed floats,
            # the catalog's unique key) get neither a dictionary (built, then dropped for
            # plain) nor compression (it saves little on them): the files grow a few percent
            # and are written faster (docs/benchmarks.md).
            numbers = [c for c, t in table.dtypes.items() if pd.api.types.is_numeric_dtype(t)]
            repeating = [c for c, t in table.dtypes.items()
                         if not pd.api.types.is_float_dtype(t) and c != TRACK_ID]
            write = table.to_parquet(target, write_index=False, compute=not background,
                                     write_statistics=numbers, use_dictionary=repeating,
                                     compression={c: "snappy" if c in repeating else "none"
                                                  for c in table.columns},
                                     storage_options=self.storage_options)
            if background:
                from distributed import get_client
                self._writing.append(get_client().compute(write, priority=-1))
        else:
            self.fs.makedirs(f"{self.partial}/{name}", exist_ok=True)
            with self.fs.open(f"{self.partial}/{name}/part.0.parquet", "wb") as handle:
                table.to_parquet(handle, index=False)

    def wait_for_writes(self, failed: bool = False) -> None:
        """Wait for the background writes and raise the first error one of them met.

        After a failure (``failed``) their errors are ignored: this only lets the writes
        already running end, so that none writes into the directory once it is removed (a
        remote worker goes on with a task whose client has gone). It waits at most
        ``_FAILED_WRITES_WAIT`` seconds: a cluster without workers would never end them.
        """
        from distributed import wait

        from sonicatlas.runtime import show_progress
        writing, self._writing = self._writing, []
        if failed:
            with contextlib.suppress(Exception):
                wait(writing, timeout=_FAILED_WRITES_WAIT)
            return
        if writing:
            show_progress(*writing)  # on large catalogs this wait is long enough to show
        for future in writing:
            future.result()

    def write_json(self, name: str, data: dict) -> None:
        with self.fs.open(f"{self.partial}/{name}", "w") as handle:
            json.dump(data, handle, indent=2, default=_jsonable)


def _jsonable(value):
    if hasattr(value, "item"):
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


@contextlib.contextmanager
def open_run(final: str, storage_options: dict | None = None, overwrite: bool = False,
             echo=None) -> Iterator[RunDirectory]:
    """Yield a :class:`RunDirectory`; commit it to ``final`` if the block succeeds.

    Before anything is written, partial runs in the same parent directory whose owner is
    gone are removed, and those that cannot be judged are named through ``echo``
    (:mod:`.partials`). The new partial run records its owner until it is committed.

    An existing ``final`` is replaced only with ``overwrite`` and only if it is a run
    directory (:func:`~.provenance.is_run_directory`); it stays in place until the new run
    is complete, and is then moved aside, the new run moved in, and the old one deleted.

    Raises
    ------
    OutputExistsError
        ``final`` exists and ``overwrite`` is false, or it is not a run directory (checked
        before any work; nothing is touched).
    """
    run = RunDirectory(final, storage_options)
    storage.check_target(run.fs, run.final, final, overwrite, is_run_directory, RUN_KIND)
    swept = sweep_partials(run.fs, posixpath.dirname(run.final))
    if echo is not None:
        if swept.removed:
            echo(f"Removed {len(swept.removed)} partial run(s) of processes that are gone: "
                 + ", ".join(swept.removed))
        for line in swept.left:
            echo(f"Left {line}")
    with storage.replacing(run.fs, run.final, run.partial):
        run.fs.makedirs(run.partial, exist_ok=False)
        record_owner(run.fs, run.partial)
        yield run
        forget_owner(run.fs, run.partial)


def versions() -> dict[str, str]:
    """Versions of Python and of the libraries whose behaviour shapes the results."""
    found = {"python": platform.python_version()}
    for name in _VERSIONED:
        with contextlib.suppress(metadata.PackageNotFoundError):
            found[name] = metadata.version(name)
    return found


@contextlib.contextmanager
def job_session(config, out: str, overwrite: bool, stage, echo
                ) -> Iterator[tuple[RunDirectory, object]]:
    """Everything around a job's work: its run directory, a Dask client, a performance report.

    Yields ``(run_directory, client)``; on leaving, background writes are waited for, the
    report is written, the client closed and the run moved into place (or removed, when the
    block raised).
    """
    from distributed import performance_report

    from sonicatlas.runtime import connect

    with contextlib.ExitStack() as stack:
        run_dir = stack.enter_context(
            open_run(out, config.storage_options, overwrite, echo))
        with stage("start cluster"):
            client = stack.enter_context(connect(config.cluster, echo))
        stack.enter_context(performance_report(f"{run_dir.path}/performance.html",
                                               mode="inline",
                                               storage_options=config.storage_options))
        # first on the way out: no run is reported on or committed while a write is running
        stack.push(lambda error, *_: run_dir.wait_for_writes(failed=error is not None))
        yield run_dir, client


def run_job(name: str, work, config, out: str | None, overwrite: bool, echo):
    """Run a job's ``work(config, client, run_dir, stage, echo)`` inside a :func:`job_session`.

    Returns the summary ``work`` returns, pointing at where the run was moved.
    """
    from sonicatlas.runtime import StageTimer

    stage = StageTimer(echo)
    out = out or default_run_name(name)
    with job_session(config, out, overwrite, stage, echo) as (run_dir, client):
        summary = work(config, client, run_dir, stage, echo)
    return summary.moved_to(out)
