"""The built-in sample catalog: generated deterministically on first use."""

from __future__ import annotations

import os
from pathlib import Path

SAMPLE_SEED = 20_260_101


def sample_catalog(rows: int, root: str | os.PathLike | None = None) -> str:
    """Path of the built-in sample with ``rows`` tracks, generating it if absent.

    It lives under ``$SONICATLAS_DATA`` (default ``./data``) as ``sample/tracks-<rows>``; the
    same rows always give the same catalog.
    """
    root = Path(root or os.environ.get("SONICATLAS_DATA", "data"))
    path = root / "sample" / f"tracks-{rows}"
    if not path.exists():
        from .synth import generate_tracks  # only on first use

        generate_tracks(str(path), rows=rows, seed=SAMPLE_SEED,
                        rows_per_partition=min(rows, 1_000_000))
    return str(path)
