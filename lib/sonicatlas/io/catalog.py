"""Reading a partitioned Parquet track catalog onto the column contract.

A catalog is checked before any data is read: every file's footer is opened on the workers
(a corrupt file is named), the rows are counted from the footers, and the columns are matched to
the contract through the user's mapping (a missing or mistyped column is named, with the
columns that are there).

The rows are then read by pyarrow's dataset reader, one partition per file (a file with
several row groups and many rows is split by row groups), with Hive ``key=value`` folders as
columns. ``dd.read_parquet`` reads each file through fsspec, several times slower
(docs/benchmarks.md), and fuses files into fewer, larger partitions once only some columns are
read, which can leave one of two workers with 3 of 5 partitions.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import dask.dataframe as dd
import fsspec
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq
from distributed import Client
from fsspec.implementations.local import LocalFileSystem

from sonicatlas import storage
from sonicatlas.contract import (
    DETAIL,
    FEATURES,
    METADATA,
    REASON,
    SOURCE_FILE,
    SOURCE_LINE,
    TRACK_ID,
)
from sonicatlas.errors import CorruptFileError, InputError, MissingColumnsError, WrongTypeError
from sonicatlas.io.schema import require_everywhere, unify
from sonicatlas.io.setaside import list_ingest_rejects, read_set_aside


@dataclass(frozen=True)
class Catalog:
    """A checked catalog: where it is, its files, rows and the columns to read."""

    url: str
    files: tuple[str, ...]
    #: every row of the source: the data files' and those ``sonicatlas ingest`` set aside
    rows: int
    fingerprint: str
    #: contract name -> the input's column name, for every column that will be read
    sources: dict[str, str]
    storage_options: dict
    #: rows in each row group of each file, from the footers
    row_groups: tuple[tuple[int, ...], ...] = ()
    #: one schema for all files (numeric types promoted), Hive folders included
    schema: pa.Schema | None = None
    #: rows ``sonicatlas ingest`` set aside (under ``_rejects/``), and how many each holds
    ingest_rejects: tuple[str, ...] = ()
    ingest_rejects_rows: tuple[int, ...] = ()

    @property
    def carried(self) -> tuple[str, ...]:
        """Metadata columns present in the input, in contract order."""
        return tuple(c for c in METADATA if c in self.sources)


def list_parquet_files(url: str, storage_options: dict | None = None) -> list[str]:
    """All data files of a catalog: a file, a directory (recursively) or a glob.

    Names starting with ``_`` or ``.`` are skipped at every level, as pyarrow's dataset reader
    does (``_rejects/``, ``_metadata``, temporary files).
    """
    fs, _ = fsspec.core.url_to_fs(url, **(storage_options or {}))
    files = []
    for path in (fsspec.core.strip_protocol(p) for p in expand_paths(url, storage_options)):
        found = fs.find(path) if fs.isdir(path) else [path]
        for name in found:
            relative = name[len(path):] if name.startswith(path) else name.rsplit("/", 1)[-1]
            if any(part.startswith(("_", ".")) for part in relative.split("/") if part):
                continue
            files.append(fs.unstrip_protocol(name))
    return sorted(files)


def _footer(path: str, storage_options: dict
            ) -> tuple[str, tuple[int, ...], pa.Schema | None, str]:
    """(path, rows per row group, schema, error) from one file's Parquet footer; on a worker."""
    try:
        with fsspec.open(path, "rb", **storage_options) as handle:
            parquet = pq.ParquetFile(handle)
            meta = parquet.metadata
            return (path, tuple(meta.row_group(i).num_rows for i in range(meta.num_row_groups)),
                    parquet.schema_arrow, "")
    except Exception as exc:  # any reason a footer is unreadable is the user's to see
        return path, (), None, f"{exc.__class__.__name__}: {exc}"


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
    with storage.reading(f"the catalog at {url}"):  # no bucket, no credentials: one line
        files = list_parquet_files(url, storage_options)
    if not files:
        raise InputError(f"catalog at {url}: no Parquet files found")
    rejects = list_ingest_rejects(url, storage_options)
    footers = client.gather(client.map(_footer, [*files, *rejects],
                                       storage_options=storage_options, pure=False))
    broken = [(path, error) for path, _, _, error in footers if error]
    if broken:
        path, error = broken[0]
        more = f" (and {len(broken) - 1} more)" if len(broken) > 1 else ""
        raise CorruptFileError(f"catalog at {url}: cannot read Parquet file {path}{more}: "
                               f"{error}")
    data, set_aside = footers[:len(files)], footers[len(files):]
    rows = sum(sum(groups) for _, groups, _, _ in data)
    set_aside_rows = sum(sum(groups) for _, groups, _, _ in set_aside)
    if rows == 0 and set_aside_rows:
        raise InputError(f"catalog at {url} has no rows to cluster: ingest set aside all "
                         f"{set_aside_rows:,} (see their reasons in {url}/_rejects)")
    if rows == 0:
        raise InputError(f"catalog at {url} is empty: {len(files)} file(s) and no rows")

    schemas = {path: schema for path, _, schema, _ in data}
    dataset = _dataset(url, files, storage_options, unify(schemas, url))
    sources = _resolve_columns(url, _empty_frame(dataset.schema), columns, features)
    require_everywhere(url, schemas, [sources[c] for c in (TRACK_ID, *features)])
    fingerprint = hashlib.sha256(
        "\n".join(f"{path}:{sum(groups)}" for path, groups, _, _ in footers).encode()
    ).hexdigest()[:16]
    return Catalog(url, tuple(files), rows + set_aside_rows,
                   fingerprint, sources, storage_options,
                   tuple(groups for _, groups, _, _ in data), dataset.schema,
                   tuple(path for path, _, _, _ in set_aside),
                   tuple(sum(groups) for _, groups, _, _ in set_aside))


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
    wanted = [TRACK_ID, *features, *(c for c in METADATA if c in sources),
              *(c for c in (SOURCE_FILE, SOURCE_LINE) if c in sources)]
    return {name: sources[name] for name in wanted}


def read_catalog(catalog: Catalog, carry: tuple[str, ...],
                 rows_per_partition: int = 1_000_000) -> dd.DataFrame:
    """Lazy DataFrame of the contract columns the job uses, named as in the contract.

    One partition per file, or per run of row groups of about ``rows_per_partition`` rows
    in a file with more; partitions are in file order. Text columns are ``string[pyarrow]``.
    Every file is read as the catalog's common schema. An ingested catalog adds
    ``source_file`` and ``source_line``, and its set-aside rows as the last partitions, with
    ``reason`` and ``detail`` (null in the other partitions).
    """
    located = [c for c in (SOURCE_FILE, SOURCE_LINE) if c in catalog.sources and c not in carry]
    wanted = [TRACK_ID, *(c for c in catalog.sources if c in FEATURES), *carry, *located]
    # Rows that ingest set aside come last, with its reason and detail (null elsewhere).
    return _read_columns(catalog, wanted, (REASON, DETAIL) if catalog.ingest_rejects else (),
                         rows_per_partition)


def read_columns(catalog: Catalog, columns: tuple[str, ...],
                 rows_per_partition: int = 1_000_000, partitions=None) -> dd.DataFrame:
    """Lazy DataFrame of some contract columns, in the partitions of :func:`read_catalog`.

    Partition ``i`` holds every row of partition ``i`` of :func:`read_catalog` (the rows that
    ingest set aside included), in the same order: a row's position there (``_pos``) finds it
    here. The job reads the carried columns this way when it writes its tables, instead of
    holding them from the first read. ``partitions``: if given, only these partitions are
    read; the others are empty.
    """
    return _read_columns(catalog, list(columns), (), rows_per_partition, partitions)


def _read_columns(catalog: Catalog, wanted: list[str], judged: tuple[str, ...],
                  rows_per_partition: int, partitions=None) -> dd.DataFrame:
    columns = [catalog.sources[c] for c in wanted]
    dataset = _dataset(catalog.url, catalog.files, catalog.storage_options, catalog.schema)
    # the dataset was opened on the stripped paths, so its fragments carry them as they are
    # (stripping again would make a remote path without its protocol a local one)
    fragments = {f.path: f for f in dataset.get_fragments()}
    pieces = [(fragments[_stripped(path)], row_groups, path)
              for path, groups in zip(catalog.files, catalog.row_groups, strict=True)
              for row_groups in _row_group_runs(groups, rows_per_partition)]
    pieces += [(None, wanted, path) for path in catalog.ingest_rejects]
    if partitions is not None:
        pieces = [piece if i in partitions else (None, None, None)
                  for i, piece in enumerate(pieces)]
    meta = _to_pandas(_with_nulls(dataset.schema.empty_table().select(columns), judged))
    frame = dd.from_map(_read_piece, pieces, columns=columns, schema=dataset.schema,
                        judged=judged, storage_options=catalog.storage_options, meta=meta,
                        label="read-catalog", enforce_metadata=False)
    return frame.rename(columns={catalog.sources[c]: c for c in wanted})


def _row_group_runs(groups: tuple[int, ...], rows: int) -> list[list[int] | None]:
    """Row groups of one file in runs of about ``rows`` rows; ``[None]``: the whole file."""
    if len(groups) < 2 or sum(groups) <= rows * 1.5:
        return [None]
    runs, current, size = [], [], 0
    for i, n in enumerate(groups):
        if current and size + n > rows:
            runs.append(current)
            current, size = [], 0
        current.append(i)
        size += n
    return [*runs, current]


def _read_piece(piece, columns: list[str], schema: pa.Schema, judged: tuple[str, ...] = (),
                storage_options: dict | None = None) -> pd.DataFrame:
    """One partition: a file's rows (or some of its row groups), as a pandas frame."""
    fragment, row_groups, path = piece
    if path is None:  # a partition not asked for
        return _to_pandas(_with_nulls(schema.empty_table().select(columns), judged))
    try:
        if fragment is None:  # ingest's rejects: text, typed here as the catalog's columns
            return _to_pandas(read_set_aside(path, row_groups, columns, schema, judged,
                                             storage_options or {}))
        if row_groups is not None:
            fragment = fragment.subset(row_group_ids=row_groups)
        table = fragment.to_table(schema=schema, columns=columns)
    except (OSError, pa.ArrowException) as exc:
        raise CorruptFileError(f"cannot read Parquet file {path}: "
                               f"{exc.__class__.__name__}: {exc}") from exc
    return _to_pandas(_with_nulls(table, judged))


def _with_nulls(table: pa.Table, names: tuple[str, ...]) -> pa.Table:
    for name in names:
        table = table.append_column(name, pa.nulls(len(table), pa.string()))
    return table


def _to_pandas(table: pa.Table) -> pd.DataFrame:
    # The same dtypes whatever wrote the file: no pandas metadata, text as string[pyarrow].
    return table.to_pandas(types_mapper=_STRING.get, ignore_metadata=True)


_STRING = {pa.string(): pd.StringDtype("pyarrow"), pa.large_string(): pd.StringDtype("pyarrow")}


def _empty_frame(schema: pa.Schema) -> pd.DataFrame:
    return _to_pandas(schema.empty_table())


def _dataset(url: str, files, storage_options: dict, schema: pa.Schema | None = None
             ) -> ds.Dataset:
    """The catalog's files as a pyarrow dataset; Hive folders under ``url`` are columns.

    ``schema``: the files' common schema, to read every file as; Hive columns are added.
    """
    fs, root = fsspec.core.url_to_fs(url, **storage_options)
    # pyarrow's own local reader; other file systems through fsspec
    arrow_fs = pafs.LocalFileSystem() if isinstance(fs, LocalFileSystem) else \
        pafs.PyFileSystem(pafs.FSSpecHandler(fs))
    base = root.rstrip("/") if fs.isdir(root) else None
    paths = [_stripped(f) for f in files]
    found = ds.dataset(paths, filesystem=arrow_fs, format="parquet",
                       partitioning="hive" if base else None, partition_base_dir=base)
    if schema is None or found.schema.equals(schema):
        return found
    folders = [f for f in found.schema if f.name not in schema.names]
    return ds.dataset(paths, filesystem=arrow_fs, format="parquet", schema=pa.schema(
        [*schema, *folders]), partitioning="hive" if base else None, partition_base_dir=base)


def _stripped(path: str) -> str:
    return fsspec.core.strip_protocol(path)


def expand_paths(url: str, storage_options: dict | None = None) -> list[str]:
    """``url`` as full URLs of files: a glob (``*``, ``?``, ``[01]``) expanded and sorted."""
    fs, path = fsspec.core.url_to_fs(url, **(storage_options or {}))
    found = sorted(fs.glob(path)) if any(ch in path for ch in "*?[") else [path]
    return [fs.unstrip_protocol(p) for p in found]
