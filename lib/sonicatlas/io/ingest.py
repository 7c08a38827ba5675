"""``sonicatlas ingest``: CSV files into the Parquet catalog contract.

Every cell is read as text, so nothing is coerced silently: a value that does not parse makes
its row a reject with a reason and the value as read. Every row written, accepted or not,
keeps its ``source_file`` and ``source_line``. Rejects are kept under ``out/_rejects/``, in
files that readers of ``out`` skip and that a run over ``out`` counts in (so a run accounts
for every row of the CSV); read them with ``pd.read_parquet(f"{out}/_rejects")``. Range checks
are left to the clustering job. The output appears at ``out`` only once it is complete.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import dask
import fsspec
import pandas as pd

from sonicatlas import storage
from sonicatlas.contract import (
    DETAIL,
    INGEST_REJECTS_DIR,
    INGEST_REJECTS_SUFFIX,
    REASON,
    REQUIRED,
    SOURCE_FILE,
    SOURCE_LINE,
    TRACK_ID,
)
from sonicatlas.errors import CorruptFileError, InputError, MissingColumnsError, OutputExistsError
from sonicatlas.io.catalog import expand_paths
from sonicatlas.io.columns import check_mapping, recognise_columns
from sonicatlas.io.csvfiles import CsvFormat, head_lines, read_text, sniff_format
from sonicatlas.io.parsing import CATALOG_COLUMNS, RAW_PREFIX, REJECTED, parse_rows

REJECTS_DIR = INGEST_REJECTS_DIR
REJECTS_SUFFIX = INGEST_REJECTS_SUFFIX


@dataclass(frozen=True)
class IngestResult:
    """What one ingest wrote: ``rows_read == rows_accepted + rows_rejected``."""

    out: str
    rows_read: int
    rows_accepted: int
    rows_rejected: int
    reject_reasons: dict[str, int]
    #: source column -> catalog column, for every column kept
    columns: dict[str, str] = field(default_factory=dict)
    #: source columns neither kept nor used for the id
    dropped: tuple[str, ...] = ()
    #: the delimiter and decimal mark used, and which were detected
    format: CsvFormat = CsvFormat()


def ingest_csv(paths: list[str], out: str, columns: dict[str, str] | None = None, *,
               blocksize: str | None = "64MB", storage_options: dict | None = None,
               overwrite: bool = False, sep: str | None = None, decimal: str | None = None,
               id_from: tuple[str, ...] | list[str] = ()) -> IngestResult:
    """Read CSV files into a Parquet catalog at ``out``, with rejected rows under ``out/_rejects``.

    Parameters
    ----------
    paths : list of str
        CSV files or globs (``*``, ``?``, ``[01]``), local or any fsspec URL. All files must
        have the same header.
    out : str
        Output directory (fsspec URL). Accepted rows are written with the contract's column
        names and dtypes; rejects keep their columns as text plus ``reason`` and ``detail``.
        Both carry ``source_file`` and ``source_line`` (the header is line 1).
    columns : dict of str to str, optional
        Source -> contract column renames. Columns named as in the contract or with one of the
        usual names (:data:`sonicatlas.io.columns.USUAL_NAMES`) need none; the rest are
        dropped and listed in the result.
    blocksize : str or None
        Size of the CSV blocks read in parallel. Quoted fields containing newlines need
        ``blocksize=None`` (one partition per file).
    storage_options : dict, optional
        Passed to fsspec for both input and output.
    overwrite : bool
        Replace an existing non-empty ``out``.
    sep, decimal : str, optional
        Field delimiter and decimal mark; detected from the first lines when not given.
    id_from : sequence of str
        Make ``track_id`` from these columns (source or contract names) with
        :func:`sonicatlas.io.parsing.stable_track_id`; a row where one of them is blank is
        rejected.

    Returns
    -------
    IngestResult

    Raises
    ------
    MissingColumnsError
        A required column is absent after mapping (checked from the header, before reading).
    CorruptFileError
        A malformed CSV (e.g. a row with more fields than the header); names the file.
    InputError
        No files match, no rows, or an unusable mapping.
    OutputExistsError
        ``out`` exists, is not empty, and ``overwrite`` is False.
    """
    so = dict(storage_options or {})
    paths = [paths] if isinstance(paths, str) else list(paths)
    files = _input_files(paths, so)
    try:
        fmt = sniff_format(head_lines(files[0], so), sep, decimal)
    except FileNotFoundError as e:
        raise InputError(f"input file not found: {_shown(files[0])}") from e
    except UnicodeDecodeError as e:
        raise InputError(f"{_shown(files[0])} is not UTF-8 text: {e}") from e
    header = _read_header(files, fmt, so)
    keep, id_sources = _resolve_columns(header, check_mapping(
        list((columns or {}).items()), "columns"), files, tuple(id_from))
    fs, out_path = storage.resolve(out, so)
    if storage.occupied(fs, out_path):
        if not overwrite:
            raise OutputExistsError(f"output {out} already exists; pass overwrite=True "
                                    "(--overwrite) to replace it")
        if not _is_ingested_catalog(fs, out_path):
            raise OutputExistsError(f"{out} is not a catalog sonicatlas ingest wrote; "
                                    "--overwrite replaces only that, so it was left "
                                    "untouched: choose another --out")
    storage.check_writable(fs, out_path, f"the catalog at {out}")
    with storage.replacing(fs, out_path) as partial:
        kinds = _convert(files, header, fmt, keep, id_sources, fs.unstrip_protocol(partial),
                         blocksize, so)
        if not kinds:
            raise InputError(f"no data rows in {', '.join(map(_shown, files))}")
    accepted = kinds.pop("", 0)
    dropped = tuple(c for c in header if c not in keep and c not in id_sources)
    return IngestResult(out, accepted + sum(kinds.values()), accepted, sum(kinds.values()),
                        dict(sorted(kinds.items())), dict(keep), dropped, fmt)


def _is_ingested_catalog(fs, path: str) -> bool:
    """Whether ``path`` holds only what an ingest writes: Parquet parts and ``_rejects/``."""
    if not fs.isdir(path):
        return False
    names = [n.rstrip("/").rsplit("/", 1)[-1] for n in fs.ls(path, detail=False)]
    return REJECTS_DIR in names and all(
        n.endswith(".parquet") or n in (REJECTS_DIR, "_metadata", "_common_metadata")
        for n in names)


def _input_files(paths: list[str], so: dict) -> list[str]:
    """The files of ``paths``: globs expanded, a directory's visible files, in order."""
    files = []
    for url in (f for p in paths for f in expand_paths(p, so)):
        fs, path = storage.resolve(url, so)
        if fs.isdir(path):  # names starting with "_" or "." are skipped, as catalog readers do
            inside = [p for p in fs.find(path) if not any(
                part.startswith(("_", ".")) for part in p[len(path):].split("/") if part)]
            if not inside:
                raise InputError(f"no input files in the directory {_shown(url)}")
            files += [fs.unstrip_protocol(p) for p in sorted(inside)]
        else:
            files.append(url)
    if not files:
        raise InputError(f"no input files match {' '.join(paths)}")
    return files


def _read_header(files: list[str], fmt: CsvFormat, so: dict) -> list[str]:
    """Each file's header; require one shared header."""
    header: list[str] | None = None
    for f in files:
        try:
            with fsspec.open(f, "rb", compression="infer", **so) as fh:
                cols = [str(c) for c in pd.read_csv(fh, nrows=0, dtype=str, sep=fmt.sep).columns]
        except FileNotFoundError as e:
            raise InputError(f"input file not found: {_shown(f)}") from e
        except pd.errors.EmptyDataError as e:
            raise InputError(f"{_shown(f)} is empty: no header line") from e
        except (pd.errors.ParserError, UnicodeDecodeError) as e:
            raise InputError(f"cannot read the CSV header of {_shown(f)}: {e}") from e
        if header is None:
            header, first = cols, f
        elif cols != header:
            raise InputError(f"{_shown(f)} has different columns from {_shown(first)}; ingest "
                             f"them separately.\n  {_shown(first)}: {header}\n  {_shown(f)}: "
                             f"{cols}")
    return header


def _resolve_columns(header: list[str], mapping: dict[str, str], files: list[str],
                     id_from: tuple[str, ...]) -> tuple[dict[str, str], tuple[str, ...]]:
    """Source -> contract name of the columns to keep, and the source columns of the id."""
    first = _shown(files[0])
    where = first if len(files) == 1 else f"{first} (and {len(files) - 1} more)"
    unknown = [s for s in mapping if s not in header]
    if unknown:
        raise InputError(f"column mapping names {unknown}, not in {where}; columns there: "
                         f"{', '.join(header)}")
    foreign = [t for t in mapping.values() if t not in CATALOG_COLUMNS]
    if foreign:
        raise InputError(f"column mapping targets {foreign} are not catalog columns; catalog "
                         f"columns: {', '.join(CATALOG_COLUMNS)}")
    try:
        keep = recognise_columns(header, mapping, CATALOG_COLUMNS)
    except InputError as e:
        raise InputError(f"{where}: {e}") from None
    id_sources: tuple[str, ...] = ()
    if id_from:
        by_target = {t: s for s, t in keep.items()}
        id_sources = tuple(name if name in header else by_target.get(name, "")
                           for name in id_from)
        absent = [n for n, s in zip(id_from, id_sources, strict=True) if not s]
        if absent:
            raise InputError(f"--id-from names {absent}, not in {where}; columns there: "
                             f"{', '.join(header)}")
        keep = {s: t for s, t in keep.items() if t != TRACK_ID}  # the id is made, not read
    have = set(keep.values()) | ({TRACK_ID} if id_sources else set())
    missing = [c for c in REQUIRED if c not in have]
    if missing:
        hint = ",".join(f"their_name={c}" for c in missing)
        ids = " (or --id-from artist,name to make ids)" if TRACK_ID in missing else ""
        raise MissingColumnsError(
            f"{where} lacks required column(s) {', '.join(missing)} (after column mapping "
            f"{mapping or '{}'}). Columns there: {', '.join(header)}. Map yours with "
            f"--columns {hint} or a conf/sources/*.yaml mapping{ids}.")
    order = {c: i for i, c in enumerate(CATALOG_COLUMNS)}
    return dict(sorted(keep.items(), key=lambda kv: order[kv[1]])), id_sources


def _convert(files: list[str], header: list[str], fmt: CsvFormat, keep: dict[str, str],
             id_sources: tuple[str, ...], tmp_url: str, blocksize, so: dict) -> dict[str, int]:
    """Write accepted rows and rejects under ``tmp_url`` in one pass; row count per kind."""
    targets = tuple(dict.fromkeys([*([TRACK_ID] if id_sources else []), *keep.values()]))
    id_columns = tuple(keep.get(s, s) for s in id_sources)
    try:
        text = read_text(files, header, fmt, blocksize, so).rename(columns=keep)
        parts = text.map_partitions(parse_rows, targets, fmt.decimal, id_columns)
        typed = [c for c in parts.columns if not c.startswith("__") and c not in (REASON,
                                                                                  DETAIL)]
        raw = [RAW_PREFIX + c for c in targets]
        accepted = parts[~parts[REJECTED]][typed]
        rejected = parts[parts[REJECTED]][[*raw, REASON, DETAIL, SOURCE_FILE, SOURCE_LINE]]
        rejected = rejected.rename(columns={RAW_PREFIX + c: c for c in targets})
        kinds = parts[REASON].map_partitions(lambda s: s.value_counts(), meta=("n", "int64"))
        # One compute, so the CSV is read once for both outputs and the counts; the counts
        # are per partition (dask's own value_counts would start a shuffle).
        _, _, kinds = dask.compute(
            accepted.to_parquet(tmp_url, write_index=False, compute=False, storage_options=so),
            rejected.to_parquet(f"{tmp_url}/{REJECTS_DIR}", write_index=False, compute=False,
                                name_function=_rejects_name, storage_options=so),
            kinds)
    except (pd.errors.ParserError, UnicodeDecodeError) as e:
        detail = str(e).split("Original Message:")[-1].strip()  # drop dask's wrapper text
        raise CorruptFileError(f"malformed CSV {_find_bad_file(files, header, fmt, so)}: "
                               f"{detail}") from e
    return {str(k): int(v) for k, v in kinds.groupby(level=0).sum().items()}


def _rejects_name(i: int) -> str:
    # dask's read_parquet(out) finds *.parquet recursively, _rejects/ included (pyarrow skips
    # "_" directories); another suffix keeps rejects out of the catalog for both readers.
    # A _metadata file would also do, but breaks dask's read_parquet(filesystem="arrow").
    return f"part.{i}{REJECTS_SUFFIX}"


def _find_bad_file(files: list[str], header: list[str], fmt: CsvFormat, so: dict) -> str:
    """Name the file that fails to parse (error path only, so re-reading is acceptable)."""
    if len(files) == 1:
        return _shown(files[0])
    for f in files:
        try:
            read_text([f], header, fmt, "64MB", so).compute()
        except (pd.errors.ParserError, UnicodeDecodeError):
            return _shown(f)
    return f"among {', '.join(map(_shown, files))}"


def _shown(url: str) -> str:
    return url.removeprefix("file://")  # local paths as the user typed them
