"""Input: reading a catalog and deciding, row by row, what is accepted.

``catalog`` lists and opens a Parquet catalog on any fsspec URL, maps column names onto the
contract (:mod:`sonicatlas.contract`) and reads it as a dask DataFrame, a partition per file;
``checks`` gives every row a reject reason or none, and ``duplicates`` finds repeated track ids
without a shuffle; ``ingest`` turns CSV exports into such a catalog (``csvfiles`` reads them,
``parsing`` types them), with the column mappings and usual names of ``columns``; ``schema``
reconciles files of different types and ``setaside`` reads ingest's rejects into a run.
"""

from sonicatlas.lazy import exports

__getattr__, __dir__ = exports(__name__, {
    "open_catalog": "catalog", "read_catalog": "catalog", "Catalog": "catalog",
    "validate": "checks", "check_rows": "checks", "ingest_csv": "ingest",
    "expand_paths": "catalog", "stable_track_id": "parsing", "recognise_columns": "columns",
})
__all__ = __dir__()
