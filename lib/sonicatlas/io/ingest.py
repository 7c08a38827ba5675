"""``sonicatlas ingest``: CSV files into the Parquet catalog contract.

Every cell is read as text, so nothing is coerced silently: a value that does not parse makes
its row a reject with a reason and the value as read. Every row written, accepted or not,
keeps its ``source_file`` and ``source_line``. Rejects are kept under ``out/_rejects/``, in
files that readers of ``out`` skip and that a run over ``out`` counts in (so a run accounts
for every row of the CSV); read them with ``pd.read_parquet(f"{out}/_rejects")``. Range checks
are left to the clustering job. The output appears at ``out`` only once it is complete.
"""

from __future__ import annotations

import hashlib
import posixpath
from dataclasses import dataclass, field

import dask
import fsspec
import numpy as np
import pandas as pd

from sonicatlas import storage
from sonicatlas.contract import (
    DETAIL,
    FEATURES,
    INGEST_REJECTS_DIR,
    INGEST_REJECTS_SUFFIX,
    METADATA,
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

CATALOG_COLUMNS: tuple[str, ...] = (*REQUIRED, *METADATA)
#: Metadata stored as nullable integers; a fractional value there is unparsable.
INTEGER_METADATA: tuple[str, ...] = ("popularity", "key", "mode", "time_signature", "release_year")
REJECTS_DIR = INGEST_REJECTS_DIR
REJECTS_SUFFIX = INGEST_REJECTS_SUFFIX
#: ``--id-from`` joins the named columns' stripped values with this separator before hashing.
ID_SEPARATOR = "\x1f"

# A 4-digit group: covers YYYY-MM-DD, YYYY-MM, YYYY and MM/DD/YYYY in the real files.
_YEAR = r"(?<!\d)(\d{4})(?!\d)"
_BOOLEANS = {"true": True, "1": True, "false": False, "0": False}
# Internal columns of the per-partition frame; "__" cannot clash with contract names.
_REJECTED, _KIND, _RAW = "__rejected", "__kind", "__raw:"


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


def stable_track_id(values: pd.Series) -> str:
    """The ``--id-from`` id of one row: 16 hex digits of SHA-256 over its values.

    The values (text, stripped of surrounding blanks) are joined with U+001F and encoded as
    UTF-8, so the same artist and title give the same id in every run and on every machine.
    """
    return hashlib.sha256(ID_SEPARATOR.join(values).encode("utf-8")).hexdigest()[:16]


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
        :func:`stable_track_id`; a row where one of them is blank is rejected.

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
    fmt = sniff_format(head_lines(files[0], so), sep, decimal)
    header = _read_header(files, fmt, so)
    keep, id_sources = _resolve_columns(header, check_mapping(
        list((columns or {}).items()), "columns"), files, tuple(id_from))
    fs, out_path = storage.resolve(out, so)
    if storage.occupied(fs, out_path) and not overwrite:
        raise OutputExistsError(f"output {out} already exists; pass overwrite=True "
                                "(--overwrite) to replace it")
    _check_writable(fs, out_path, out)
    with storage.replacing(fs, out_path) as partial:
        kinds = _convert(files, header, fmt, keep, id_sources, fs.unstrip_protocol(partial),
                         blocksize, so)
        if not kinds:
            raise InputError(f"no data rows in {', '.join(map(_shown, files))}")
    accepted = kinds.pop("", 0)
    dropped = tuple(c for c in header if c not in keep and c not in id_sources)
    return IngestResult(out, accepted + sum(kinds.values()), accepted, sum(kinds.values()),
                        dict(sorted(kinds.items())), dict(keep), dropped, fmt)


def _check_writable(fs, path: str, shown: str) -> None:
    """Fail in one line, before any reading, where ``out`` cannot be written."""
    probe = storage.hidden_sibling(path, "probe")
    try:
        fs.makedirs(posixpath.dirname(path) or ".", exist_ok=True)
        fs.touch(probe)
        fs.rm(probe)
    except OSError as e:
        raise InputError(f"cannot write the catalog at {shown}: "
                         f"{e.strerror or e.__class__.__name__}") from None


def _input_files(paths: list[str], so: dict) -> list[str]:
    files = [f for p in paths for f in expand_paths(p, so)]
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
        parts = text.map_partitions(_split, targets, fmt.decimal, id_columns)
        typed = [c for c in parts.columns if not c.startswith("__") and c not in (REASON,
                                                                                  DETAIL)]
        raw = [_RAW + c for c in targets]
        accepted = parts[~parts[_REJECTED]][typed]
        rejected = parts[parts[_REJECTED]][[*raw, REASON, DETAIL, SOURCE_FILE, SOURCE_LINE]]
        rejected = rejected.rename(columns={_RAW + c: c for c in targets})
        kinds = parts[_KIND].map_partitions(lambda s: s.value_counts(), meta=("n", "int64"))
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


def _split(df: pd.DataFrame, targets: tuple[str, ...], decimal: str = ".",
           id_columns: tuple[str, ...] = ()) -> pd.DataFrame:
    """Parse one partition: typed contract columns, the raw text, a reason and a detail.

    A row's ``reason`` is its first problem; ``detail`` holds that value as read, then any
    further problems as ``<reason>: <value>``.
    """
    n = len(df)
    if id_columns:
        df = df.assign(**{TRACK_ID: _made_ids(df, id_columns)})
    # pandas pads a short row with empty fields (indistinguishable from empty values).
    raw = {c: df[c].fillna("").astype(str) for c in targets}
    blank = {c: (raw[c].str.strip() == "").to_numpy(dtype=bool) for c in targets}
    kinds = np.full(n, "", dtype=object)
    details = np.full(n, "", dtype=object)

    def flag(bad, kind: str, values, quote: bool = True) -> None:
        bad = np.asarray(bad, dtype=bool)
        if not bad.any():
            return
        shown = np.array([repr(v) if quote else v
                          for v in np.asarray(values, dtype=object)[bad]], dtype=object)
        first = bad & (kinds == "")
        later = bad & (kinds != "")
        details[later] = details[later] + "; " + kind + ": " + shown[later[bad]]
        details[first] = shown[first[bad]]
        kinds[first] = kind

    if id_columns:
        parts = [df[c].fillna("").astype(str).str.strip() for c in id_columns]
        any_blank = np.logical_or.reduce([(p == "").to_numpy() for p in parts])
        shown = pd.Series([", ".join(f"{c}={v!r}" for c, v in zip(id_columns, row,
                                                                   strict=True))
                           for row in zip(*parts, strict=True)], dtype=object)
        flag(any_blank, f"missing {TRACK_ID}", shown.to_numpy(), quote=False)
    else:
        flag(blank[TRACK_ID], f"missing {TRACK_ID}", raw[TRACK_ID])
    typed: dict[str, pd.Series] = {}
    for c in targets:
        text = raw[c].str.strip()
        if c in FEATURES or c in INTEGER_METADATA:
            if decimal != ".":
                text = text.str.replace(decimal, ".", regex=False)
            num = pd.to_numeric(text, errors="coerce").astype("float64")
            bad = num.isna().to_numpy() & ~blank[c]
            if c in INTEGER_METADATA:
                fractional = (num.notna() & (num % 1 != 0)).to_numpy()  # inf % 1 is NaN
                bad |= fractional
                num = num.mask(fractional).astype("Int64")
            flag(bad, f"unparsable {c}", raw[c])
            typed[c] = num
        elif c == "explicit":
            value = text.str.lower().map(_BOOLEANS)
            flag(value.isna().to_numpy() & ~blank[c], f"unparsable {c}", raw[c])
            typed[c] = value.astype("boolean")
        else:
            typed[c] = raw[c].mask(blank[c]).astype(str)
    if "release_date" in targets:
        year = raw["release_date"].str.extract(_YEAR, expand=False)
        flag(year.isna().to_numpy() & ~blank["release_date"], "unparsable release_date",
             raw["release_date"])
        derived = pd.to_numeric(year).astype("Int64")
        typed["release_year"] = (typed["release_year"].fillna(derived)
                                 if "release_year" in typed else derived)
    columns = {c: typed[c] for c in CATALOG_COLUMNS if c in typed}
    columns[SOURCE_FILE] = df[SOURCE_FILE].astype(str)
    columns[SOURCE_LINE] = df[SOURCE_LINE].astype("int64")
    columns.update({_RAW + c: raw[c] for c in targets})
    columns[REASON] = pd.Series(kinds, index=df.index, dtype=str)
    columns[DETAIL] = pd.Series(details, index=df.index, dtype=str)
    columns[_KIND] = columns[REASON]
    columns[_REJECTED] = pd.Series(kinds != "", index=df.index, dtype=bool)
    return pd.DataFrame(columns, index=df.index)


def _made_ids(df: pd.DataFrame, id_columns: tuple[str, ...]) -> pd.Series:
    parts = [df[c].fillna("").astype(str).str.strip() for c in id_columns]
    return pd.Series([stable_track_id(row) for row in zip(*parts, strict=True)],
                     index=df.index, dtype=object)


def _shown(url: str) -> str:
    return url.removeprefix("file://")  # local paths as the user typed them
