"""Rows ``sonicatlas ingest`` set aside, read back into a run over the catalog it wrote.

Ingest keeps its rejects, as text with ``reason``, ``detail``, ``source_file`` and
``source_line``, under ``<catalog>/_rejects/`` in files that catalog readers skip. A run
reads them as partitions after the catalog's own, typed as the catalog's columns (a value
that does not parse is null there; it is in ``detail`` as read), so the run's rejects and
row counts cover every row of the CSV.
"""

from __future__ import annotations

import fsspec
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from sonicatlas.contract import INGEST_REJECTS_DIR, INGEST_REJECTS_SUFFIX


def list_ingest_rejects(url: str, storage_options: dict | None = None) -> list[str]:
    """The files of rows ``sonicatlas ingest`` set aside in the catalog directory ``url``."""
    fs, root = fsspec.core.url_to_fs(url, **(storage_options or {}))
    folder = f"{root.rstrip('/')}/{INGEST_REJECTS_DIR}"
    if not fs.isdir(root) or not fs.isdir(folder):
        return []
    return sorted(fs.unstrip_protocol(p) for p in fs.ls(folder, detail=False)
                  if p.endswith(INGEST_REJECTS_SUFFIX))


def read_set_aside(path: str, contract: list[str], columns: list[str], schema: pa.Schema,
                   judged: tuple[str, ...], storage_options: dict) -> pa.Table:
    """One file of rows ingest set aside, in the catalog's columns and types.

    Parameters
    ----------
    path : str
        A ``_rejects/*.parquet.rejects`` file.
    contract, columns : list of str
        The columns to read by their contract names (as ingest wrote them), and the names
        and ``schema`` types they have in the catalog.
    judged : tuple of str
        ``reason`` and ``detail``, kept as text.
    storage_options : dict
        For fsspec.

    Returns
    -------
    pyarrow.Table
    """
    with fsspec.open(path, "rb", **storage_options) as handle:
        text = pq.read_table(handle)
    arrays = []
    for name, column in zip(contract, columns, strict=True):
        arrays.append(_as_type(text[name] if name in text.column_names else None,
                               schema.field(column).type, len(text)))
    arrays += [text[name].cast(pa.string()) if name in text.column_names
               else pa.nulls(len(text), pa.string()) for name in judged]
    return pa.table(arrays, names=[*columns, *judged])


def _as_type(values, type_: pa.DataType, n: int) -> pa.Array:
    if values is None:
        return pa.nulls(n, type_)
    if values.type == type_:
        return values
    if pa.types.is_string(type_) or pa.types.is_large_string(type_):
        return values.cast(type_)
    if pa.types.is_boolean(type_):
        words = pd.Series(values.to_pandas(), dtype=object).str.strip().str.lower()
        return pa.array(words.map({"true": True, "1": True, "false": False, "0": False}),
                        type=pa.bool_(), from_pandas=True)
    numbers = pd.to_numeric(pd.Series(values.to_pandas(), dtype=object), errors="coerce")
    try:
        return pa.array(numbers, from_pandas=True).cast(type_)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return pa.nulls(n, type_)
