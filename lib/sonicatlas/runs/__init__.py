"""Runs: the directory a job writes, and what is read back out of it.

``directory`` opens a run in a hidden sibling and moves it into place when the job succeeds
(:mod:`sonicatlas.storage`), around a Dask client and a performance report; ``outputs`` writes
the tables, maps, model and manifest of a run; ``reading`` finds a finished run and reads it,
``export`` takes one cluster's tracks out of it, and ``summary_page`` writes its one-page
markdown summary.
"""

from sonicatlas.lazy import exports

__getattr__, __dir__ = exports(__name__, {
    "open_run": "directory", "run_job": "directory", "RunDirectory": "directory",
    "export_tracks": "export", "find_run": "reading", "read_manifest": "reading",
    "write_run_summary": "summary_page",
})
__all__ = __dir__()
