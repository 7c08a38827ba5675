"""``sonicatlas ingest``: CSV files into the Parquet catalog contract.

Every cell is read as a string, so nothing is coerced silently: a value that does not parse
makes its row a reject with a reason. Rejects are kept under ``out/_rejects/``, in files that
readers of ``out`` skip; read them with ``pd.read_parquet(f"{out}/_rejects")``. Range checks
are left to the clustering job. The output appears at ``out`` only once it is complete.
"""

from __future__ import annotations

from dataclasses import dataclass

import dask
import dask.dataframe as dd
import fsspec
import numpy as np
import pandas as pd

from sonicatlas import storage
from sonicatlas.contract import FEATURES, METADATA, REQUIRED, TRACK_ID
from sonicatlas.errors import CorruptFileError, InputError, MissingColumnsError, OutputExistsError
from sonicatlas.io.columns import check_mapping

CATALOG_COLUMNS: tuple[str, ...] = (*REQUIRED, *METADATA)
#: Metadata stored as nullable integers; a fractional value there is unparsable.
INTEGER_METADATA: tuple[str, ...] = ("popularity", "key", "mode", "time_signature", "release_year")
REJECTS_DIR = "_rejects"
#: Reject files are Parquet, named so that readers of the catalog skip them.
REJECTS_SUFFIX = ".parquet.rejects"

# A 4-digit group: covers YYYY-MM-DD, YYYY-MM, YYYY and MM/DD/YYYY in the real files.
_YEAR = r"(?<!\d)(\d{4})(?!\d)"
_BOOLEANS = {"true": True, "1": True, "false": False, "0": False}
# Internal columns of the per-partition frame; "__" cannot clash with contract names.
_SOURCE, _REJECTED, _REASON, _KIND, _RAW = "__source", "__rejected", "__reason", "__kind", "__raw:"


@dataclass(frozen=True)
class IngestResult:
    """What one ingest wrote: ``rows_read == rows_accepted + rows_rejected``."""

    out: str
    rows_read: int
    rows_accepted: int
    rows_rejected: int
    reject_reasons: dict[str, int]


def ingest_csv(paths: list[str], out: str, columns: dict[str, str] | None = None, *,
               blocksize: str = "64MB", storage_options: dict | None = None,
               overwrite: bool = False) -> IngestResult:
    """Read CSV files into a Parquet catalog at ``out``, with rejected rows under ``out/_rejects``.

    Parameters
    ----------
    paths : list of str
        CSV files or globs, local or any fsspec URL. All files must have the same header.
    out : str
        Output directory (fsspec URL). Accepted rows are written with the contract's column
        names and dtypes; rejects keep their mapped columns as strings plus ``reason`` and
        ``source_file``.
    columns : dict of str to str, optional
        Source -> contract column renames. Columns neither in the contract nor mapped are
        dropped.
    blocksize : str
        Size of the CSV blocks read in parallel. Quoted fields containing newlines need
        ``blocksize=None`` (one partition per file).
    storage_options : dict, optional
        Passed to fsspec for both input and output.
    overwrite : bool
        Replace an existing non-empty ``out``.

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
    files, header = _read_header(paths, so)
    keep = _resolve_columns(header, check_mapping(list((columns or {}).items()), "columns"),
                            files)
    fs, out_path = storage.resolve(out, so)
    if storage.occupied(fs, out_path) and not overwrite:
        raise OutputExistsError(f"output {out} already exists; pass overwrite=True "
                                "(--overwrite) to replace it")
    with storage.replacing(fs, out_path) as partial:
        kinds = _convert(files, keep, fs.unstrip_protocol(partial), blocksize, so)
        if not kinds:
            raise InputError(f"no data rows in {', '.join(map(_shown, files))}")
    accepted = kinds.pop("", 0)
    return IngestResult(out, accepted + sum(kinds.values()), accepted, sum(kinds.values()),
                        dict(sorted(kinds.items())))


def _read_header(paths: list[str], so: dict) -> tuple[list[str], list[str]]:
    """Expand globs and read each file's header; require one shared header."""
    files = fsspec.open_files(paths, mode="rb", compression="infer", **so)
    if not files:
        raise InputError(f"no input files match {paths}")
    header: list[str] | None = None
    for f in files:
        try:
            with f as fh:
                cols = [str(c) for c in pd.read_csv(fh, nrows=0, dtype=str).columns]
        except FileNotFoundError as e:
            raise InputError(f"input file not found: {f.path}") from e
        except pd.errors.EmptyDataError as e:
            raise InputError(f"{f.path} is empty: no header line") from e
        except (pd.errors.ParserError, UnicodeDecodeError) as e:
            raise InputError(f"cannot read the CSV header of {f.path}: {e}") from e
        if header is None:
            header, first = cols, f.path
        elif cols != header:
            # dask reuses the first file's header for every block, so they must agree.
            raise InputError(f"{f.path} has different columns from {first}; ingest them "
                             f"separately.\n  {first}: {header}\n  {f.path}: {cols}")
    return [f.full_name for f in files], header


def _resolve_columns(header: list[str], mapping: dict[str, str],
                     files: list[str]) -> dict[str, str]:
    """Source -> contract name of the columns to keep, in contract order."""
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
    source_of: dict[str, str] = {}
    for col in header:
        target = mapping.get(col, col)
        if target in CATALOG_COLUMNS:
            if target in source_of:
                raise InputError(f"both {source_of[target]!r} and {col!r} in {where} would "
                                 f"become {target!r}; map or rename one of them")
            source_of[target] = col
    missing = [c for c in REQUIRED if c not in source_of]
    if missing:
        hint = ",".join(f"their_name={c}" for c in missing)
        raise MissingColumnsError(
            f"{where} lacks required column(s) {', '.join(missing)} (after column mapping "
            f"{mapping or '{}'}). Columns there: {', '.join(header)}. Map yours with "
            f"--columns {hint} or a conf/sources/*.yaml mapping.")
    return {source_of[c]: c for c in CATALOG_COLUMNS if c in source_of}


def _convert(files: list[str], keep: dict[str, str], tmp_url: str, blocksize, so: dict
             ) -> dict[str, int]:
    """Write accepted rows and rejects under ``tmp_url`` in one pass; row count per kind."""
    targets = tuple(keep.values())
    try:
        # No usecols, and no column selection before _split (dask would push it into the
        # reader as usecols): with usecols pandas silently drops a row's surplus fields.
        ddf = dd.read_csv(files, dtype=str, keep_default_na=False, na_filter=False,
                          include_path_column=_SOURCE, blocksize=blocksize,
                          storage_options=so).rename(columns=keep)
        empty = pd.DataFrame({c: pd.Series(dtype=str) for c in ddf.columns})
        parts = ddf.map_partitions(_split, targets, meta=_split(empty, targets))
        typed = [c for c in parts.columns if not c.startswith("__")]
        raw = [_RAW + c for c in targets]
        accepted = parts[~parts[_REJECTED]][typed]
        rejected = parts[parts[_REJECTED]][[*raw, _REASON, _SOURCE]].rename(
            columns={**{_RAW + c: c for c in targets}, _REASON: "reason", _SOURCE: "source_file"})
        # One compute, so the CSV is read once for both outputs and the counts.
        _, _, kinds = dask.compute(
            accepted.to_parquet(tmp_url, write_index=False, compute=False, storage_options=so),
            rejected.to_parquet(f"{tmp_url}/{REJECTS_DIR}", write_index=False, compute=False,
                                name_function=_rejects_name, storage_options=so),
            parts[_KIND].value_counts())
    except (pd.errors.ParserError, UnicodeDecodeError) as e:
        detail = str(e).split("Original Message:")[-1].strip()  # drop dask's wrapper text
        raise CorruptFileError(f"malformed CSV {_find_bad_file(files, so)}: {detail}") from e
    return {str(k): int(v) for k, v in kinds.items()}


def _rejects_name(i: int) -> str:
    # dask's read_parquet(out) finds *.parquet recursively, _rejects/ included (pyarrow skips
    # "_" directories); another suffix keeps rejects out of the catalog for both readers.
    # A _metadata file would also do, but breaks dask's read_parquet(filesystem="arrow").
    return f"part.{i}{REJECTS_SUFFIX}"


def _find_bad_file(files: list[str], so: dict) -> str:
    """Name the file that fails to parse (error path only, so re-reading is acceptable)."""
    if len(files) == 1:
        return _shown(files[0])
    for f in files:
        try:
            dd.read_csv(f, dtype=str, na_filter=False, storage_options=so).map_partitions(
                _check_block).compute()
        except (pd.errors.ParserError, UnicodeDecodeError):
            return _shown(f)
    return f"among {', '.join(map(_shown, files))}"


def _check_block(df: pd.DataFrame) -> pd.DataFrame:
    # When the first row of a block has a surplus field, pandas silently takes the first
    # column as the index and shifts every column of the block (later rows raise instead).
    if not isinstance(df.index, pd.RangeIndex):
        raise pd.errors.ParserError(f"a row starting {df.index[0]!r} has more fields than "
                                    "the header")
    return df


def _split(df: pd.DataFrame, targets: tuple[str, ...]) -> pd.DataFrame:
    """Parse one partition: typed contract columns, the raw strings, and a reject reason."""
    n = len(_check_block(df))
    # pandas pads a short row with empty fields (indistinguishable from empty values).
    raw = {c: df[c].fillna("").astype(str) for c in targets}
    blank = {c: (raw[c].str.strip() == "").to_numpy(dtype=bool) for c in targets}
    reasons = np.full(n, "", dtype=object)
    kinds = np.full(n, "", dtype=object)

    def flag(bad, kind: str, values: pd.Series | None = None) -> None:
        bad = np.asarray(bad, dtype=bool)
        if not bad.any():
            return
        msg = (np.full(bad.sum(), kind, dtype=object) if values is None else
               np.array([f"{kind}: {v!r}" for v in values[bad]], dtype=object))
        kinds[bad & (kinds == "")] = kind  # the summary counts each row by its first problem
        now = reasons[bad]
        reasons[bad] = np.where(now == "", msg, now + "; " + msg)

    flag(blank[TRACK_ID], f"missing {TRACK_ID}")
    typed: dict[str, pd.Series] = {}
    for c in targets:
        text = raw[c].str.strip()
        if c in FEATURES or c in INTEGER_METADATA:
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
    columns.update({_RAW + c: raw[c] for c in targets})
    columns[_SOURCE] = df[_SOURCE].astype(str)
    columns[_REASON] = pd.Series(reasons, index=df.index, dtype=str)
    columns[_KIND] = pd.Series(kinds, index=df.index, dtype=str)
    columns[_REJECTED] = pd.Series(kinds != "", index=df.index, dtype=bool)
    return pd.DataFrame(columns, index=df.index)


def _shown(url: str) -> str:
    return url.removeprefix("file://")  # local paths as the user typed them
