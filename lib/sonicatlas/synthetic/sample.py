"""The built-in sample catalog: generated deterministically on first use."""

from __future__ import annotations

import os
from pathlib import Path

SAMPLE_SEED = 20_260_101


def sample_catalog(rows: int, root: str | os.PathLike | None = None) -> str:
    """Path of the built-in sample with ``rows`` tracks, generating it if absent.

    It lives under ``$SONICATLAS_DATA`` (default ``./data``) as ``sample/tracks-<rows>``; the
    same rows always give the same catalog. The path is absolute; workers of a remote cluster
    can read it only through a shared file system (give them an ``input`` they can reach).
    """
    root = Path(root or os.environ.get("SONICATLAS_DATA", "data")).resolve()
    path = root / "sample" / f"tracks-{rows}"
    if not path.exists():
        import dask

        from sonicatlas.synthetic.tracks import generate_tracks  # only on first use

        # Made by this process on its own disk, even when a remote cluster is connected:
        # remote workers would write it relative to their own working directory.
        with dask.config.set(scheduler="threads"):
            generate_tracks(str(path), rows=rows, seed=SAMPLE_SEED,
                            rows_per_partition=min(rows, 1_000_000))
    return str(path)
