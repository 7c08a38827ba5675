"""Reading a partitioned Parquet track catalog onto the column contract.

A catalog is checked before any data is read: every file's footer is opened on the workers
(a corrupt file is named), the rows are counted from the footers, and the columns are matched to
the contract through the user's mapping (a missing or mistyped column is named, with the
columns that are there).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import dask.dataframe as dd
import fsspec
import pandas as pd
import pyarrow.parquet as pq
from distributed import Client

from .contract import FEATURES, METADATA, TRACK_ID
from .errors import CorruptFileError, InputError, MissingColumnsError, WrongTypeError


@dataclass(frozen=True)
class Catalog:
    """A checked catalog: where it is, its files, rows and the columns to read."""

    url: str
    files: tuple[str, ...]
    rows: int
    fingerprint: str
    #: contract name -> the input's column name, for every column that will be read
    sources: dict[str, str]
    storage_options: dict

    @property
    def carried(self) -> tuple[str, ...]:
        """Metadata columns present in the input, in contract order."""
        return tuple(c for c in METADATA if c in self.sources)


def list_parquet_files(url: str, storage_options: dict | None = None) -> list[str]:
    """All data files of a catalog: a file, a directory (recursively) or a glob.

    Names starting with ``_`` or ``.`` are skipped at every level, as pyarrow's dataset reader
    does (``_rejects/``, ``_metadata``, temporary files).
    """
    fs, _, paths = fsspec.get_fs_token_paths(url, storage_options=storage_options or {})
    files = []
    for path in paths:
        found = fs.find(path) if fs.isdir(path) else [path]
        for name in found:
            relative = name[len(path):] if name.startswith(path) else name.rsplit("/", 1)[-1]
            if any(part.startswith(("_", ".")) for part in relative.split("/") if part):
                continue
            files.append(fs.unstrip_protocol(name))
    return sorted(files)


def _footer(path: str, storage_options: dict) -> tuple[str, int, str]:
    """(path, rows, error) from one file's Parquet footer; runs on a worker."""
    try:
        with fsspec.open(path, "rb", **storage_options) as handle:
            return path, pq.ParquetFile(handle).metadata.num_rows, ""
    except Exception as exc:  # any reason a footer is unreadable is the user's to see
        return path, 0, f"{exc.__class__.__name__}: {exc}"


def open_catalog(url: str, columns: dict[str, str], features: tuple[str, ...],
                 client: Client, storage_options: dict | None = None) -> Catalog:
    """Check a catalog's files and columns and return what will be read.

    Parameters
    ----------
    url : str
        Directory, file or glob; any fsspec URL the workers can reach.
    columns : dict
        The input's column names mapped onto contract names, ``{their_name: contract_name}``.
    features : tuple of str
        The features the job needs.
    client : distributed.Client
        The footers are read on its workers.

    Raises
    ------
    InputError
        No data files, or no rows.
    CorruptFileError
        A file whose Parquet footer cannot be read; the message names it.
    MissingColumnsError, WrongTypeError
        A required column is absent, or has a type that cannot hold numbers.
    """
    storage_options = storage_options or {}
    files = list_parquet_files(url, storage_options)
    if not files:
        raise InputError(f"catalog at {url}: no Parquet files found")
    footers = client.gather(client.map(_footer, files, storage_options=storage_options,
                                       pure=False))
    broken = [(path, error) for path, _, error in footers if error]
    if broken:
        path, error = broken[0]
        more = f" (and {len(broken) - 1} more)" if len(broken) > 1 else ""
        raise CorruptFileError(f"catalog at {url}: cannot read Parquet file {path}{more}: "
                               f"{error}")
    rows = sum(n for _, n, _ in footers)
    if rows == 0:
        raise InputError(f"catalog at {url} is empty: {len(files)} file(s) and no rows")

    schema = dd.read_parquet(files, storage_options=storage_options)._meta
    sources = _resolve_columns(url, schema, columns, features)
    fingerprint = hashlib.sha256(
        "\n".join(f"{path}:{n}" for path, n, _ in footers).encode()).hexdigest()[:16]
    return Catalog(url, tuple(files), rows, fingerprint, sources, storage_options)


def _resolve_columns(url: str, schema: pd.DataFrame, columns: dict[str, str],
                     features: tuple[str, ...]) -> dict[str, str]:
    renamed = {src: columns.get(src, src) for src in schema.columns}
    sources = {target: src for src, target in renamed.items()}
    missing = [c for c in (TRACK_ID, *features) if c not in sources]
    if missing:
        hints = ", ".join(f"columns.<their_name>={c}" for c in missing)
        raise MissingColumnsError(
            f"catalog at {url} has no {', '.join(repr(c) for c in missing)} "
            f"(have: {', '.join(map(str, schema.columns))}); map yours with {hints} in the "
            "config or --columns")
    for name in features:
        dtype = schema[sources[name]].dtype
        numeric = pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype)
        if not (numeric or pd.api.types.is_string_dtype(dtype)):
            via = f" (mapped from {sources[name]!r})" if sources[name] != name else ""
            raise WrongTypeError(f"catalog at {url}: column {name!r}{via} has type {dtype}; "
                                 "expected numbers (or text holding numbers)")
    wanted = [TRACK_ID, *features, *(c for c in METADATA if c in sources)]
    return {name: sources[name] for name in wanted}


def read_catalog(catalog: Catalog, carry: tuple[str, ...]) -> dd.DataFrame:
    """Lazy DataFrame of the contract columns the job uses, named as in the contract."""
    wanted = [TRACK_ID, *(c for c in catalog.sources if c in FEATURES), *carry]
    # The checked files exactly: dask's own listing would also take `_rejects/*.parquet`.
    frame = dd.read_parquet(list(catalog.files), columns=[catalog.sources[c] for c in wanted],
                            storage_options=catalog.storage_options)
    return frame.rename(columns={catalog.sources[c]: c for c in wanted})
