"""CSV files as text, block by block, with the line each row starts on.

The files are split into byte blocks at line ends (as ``dask.dataframe.read_csv`` does); each
block's first line number is one plus the line ends before it, counted from the same bytes
the block is parsed from, so every row knows its line in its own file (the header is line 1).
Blank lines are counted but are not rows. Where a quoted field spans lines, the block is read
again by the csv module, which knows where each record starts.

The delimiter is taken from the header when not given: the candidate that splits the first
lines into the most fields, the same number on each line. A ``;`` or tab file whose numbers
use decimal commas is recognised from those lines too.
"""

from __future__ import annotations

import csv
import io
import operator
import re
from dataclasses import dataclass

import dask
import dask.dataframe as dd
import fsspec
import numpy as np
import pandas as pd
from dask.bytes import read_bytes
from fsspec.utils import infer_compression

from sonicatlas.contract import SOURCE_FILE, SOURCE_LINE
from sonicatlas.errors import InputError

DELIMITERS = (",", ";", "\t", "|")
_SAMPLE_LINES = 50
_DECIMAL_COMMA = re.compile(r"^\s*[+-]?\d+,\d+(?:[eE][+-]?\d+)?\s*$")
_DECIMAL_POINT = re.compile(r"^\s*[+-]?\d*\.\d+(?:[eE][+-]?\d+)?\s*$")


@dataclass(frozen=True)
class CsvFormat:
    """How the files are written: the field delimiter and the decimal mark of numbers."""

    sep: str = ","
    decimal: str = "."
    #: what was found rather than given, e.g. ``("delimiter",)``
    detected: tuple[str, ...] = ()

    def describe(self) -> str:
        """One line for the user, e.g. ``delimiter ';' (detected), decimal ','``."""
        def part(name: str, value: str) -> str:
            return f"{name} {value!r}" + (" (detected)" if name in self.detected else "")
        return f"{part('delimiter', self.sep)}, {part('decimal', self.decimal)}"


def head_lines(url: str, storage_options: dict, n: int = _SAMPLE_LINES) -> list[str]:
    """The first ``n`` lines of a (possibly compressed) text file."""
    with fsspec.open(url, "rt", compression="infer", encoding="utf-8", newline="",
                     **storage_options) as handle:
        lines = []
        for line in handle:
            lines.append(line)
            if len(lines) >= n:
                break
    return lines


def sniff_format(lines: list[str], sep: str | None = None, decimal: str | None = None
                 ) -> CsvFormat:
    """The delimiter and decimal mark of a CSV from its first lines, unless given.

    Parameters
    ----------
    lines : list of str
        The header and a few rows.
    sep, decimal : str, optional
        Given by the user: taken as they are.

    Returns
    -------
    CsvFormat
    """
    detected: list[str] = []
    if sep is None:
        detected.append("delimiter")
        sep = max(DELIMITERS, key=lambda d: _fields(lines, d))
        if _fields(lines, sep) < 2:
            sep = ","
    if decimal is None:
        detected.append("decimal")
        decimal = "."
        if sep != ",":
            cells = [cell for row in list(csv.reader(lines, delimiter=sep))[1:] for cell in row]
            if (any(_DECIMAL_COMMA.match(c) for c in cells)
                    and not any(_DECIMAL_POINT.match(c) for c in cells)):
                decimal = ","
    if len(sep) != 1 or len(decimal) != 1 or sep == decimal:
        raise InputError(f"--sep {sep!r} and --decimal {decimal!r}: each must be one "
                         "character, and they must differ")
    return CsvFormat(sep, decimal, tuple(detected))


def _fields(lines: list[str], sep: str) -> int:
    """Fields per line when every complete line has the header's count, else 0."""
    rows = [row for row in csv.reader(lines, delimiter=sep) if row]
    if not rows:
        return 0
    complete = rows[:-1] if len(rows) > 1 else rows  # the last line read may be cut short
    counts = {len(row) for row in complete}
    return len(rows[0]) if counts == {len(rows[0])} else 0


def read_text(files: list[str], header: list[str], fmt: CsvFormat, blocksize,
              storage_options: dict) -> dd.DataFrame:
    """Every cell of ``files`` as text, plus ``source_file`` and ``source_line``.

    One partition per block of ``blocksize`` bytes (``None``: per file; compressed files are
    always read whole). A row with more fields than the header raises ``ParserError``.
    """
    if any(infer_compression(f) for f in files):
        blocksize = None
    _, blocks, paths = read_bytes(files, delimiter=b"\n", blocksize=blocksize, sample=False,
                                  compression="infer", include_path=True, **storage_options)
    if len(paths) == len(files):  # the URLs as given: read_bytes drops the protocol
        paths = files
    parts = []
    for path, file_blocks in zip(paths, blocks, strict=True):
        first_line = 1
        for i, block in enumerate(file_blocks):
            parts.append(dask.delayed(_parse_block)(block, header, fmt.sep, i == 0, first_line,
                                                    _shown(path)))
            first_line = dask.delayed(operator.add)(first_line, dask.delayed(_line_ends)(block))
    meta = _parse_block(b"", header, fmt.sep, False, 1, "")
    return dd.from_delayed(parts, meta=meta, verify_meta=False)


def _line_ends(block: bytes) -> int:
    return block.count(b"\n")


def _parse_block(block: bytes, header: list[str], sep: str, has_header: bool, first_line,
                 path: str) -> pd.DataFrame:
    """One block's rows as text; blank lines are rows too, so that lines stay counted."""
    try:
        frame = pd.read_csv(io.BytesIO(block), sep=sep, header=None, names=header, dtype=str,
                            skiprows=1 if has_header else 0, keep_default_na=False,
                            na_filter=False, skip_blank_lines=False, encoding="utf-8")
    except pd.errors.EmptyDataError:  # an empty block, or the header alone
        frame = pd.DataFrame({c: pd.Series(dtype=object) for c in header})
    if not isinstance(frame.index, pd.RangeIndex):
        # A first row with a surplus field: pandas silently takes the first column as the
        # index and shifts every column of the block (later rows raise instead).
        raise pd.errors.ParserError(f"a row starting {frame.index[0]!r} has more fields "
                                    "than the header")
    lines = block.count(b"\n") + (0 if block.endswith(b"\n") or not block else 1)
    lines -= 1 if has_header and lines else 0
    if len(frame) == lines:  # one line a row: numbered in order
        start = int(first_line) + (1 if has_header else 0)
        frame[SOURCE_LINE] = np.arange(start, start + len(frame))
        blank = _blank_lines(block, has_header) if _BLANK_LINE.search(block) else None
    else:  # a quoted field spans lines: where each record starts, by the csv module
        starts, blank = _record_starts(block, sep, has_header)
        if len(starts) != len(frame):  # the two parsers disagree: numbered in order
            starts, blank = np.arange(len(frame)) + (1 if has_header else 0), None
        frame[SOURCE_LINE] = int(first_line) + starts
    frame[SOURCE_FILE] = path
    if blank is not None and blank.any():
        frame = frame[~blank]  # counted for the numbers, but not rows (as pandas reads them)
    return frame.reset_index(drop=True)[[*header, SOURCE_FILE, SOURCE_LINE]]


def _blank_lines(block: bytes, has_header: bool) -> np.ndarray:
    lines = block.split(b"\n")[1 if has_header else 0:]
    if lines and lines[-1] == b"":
        lines.pop()  # the end of the last line
    return np.array([not line.strip(b"\r") for line in lines], dtype=bool)


def _record_starts(block: bytes, sep: str, has_header: bool) -> tuple[np.ndarray, np.ndarray]:
    """Each record's first line (0 = the block's first line), and whether it is blank."""
    reader = csv.reader(io.StringIO(block.decode("utf-8"), newline=""), delimiter=sep)
    starts, blank, consumed = [], [], 0
    for record in reader:
        starts.append(consumed)
        blank.append(not record)
        consumed = reader.line_num
    skip = 1 if has_header else 0
    return np.array(starts[skip:], dtype=np.int64), np.array(blank[skip:], dtype=bool)


_BLANK_LINE = re.compile(rb"(?:^|\n)\r?(?:\n|$)")


def _shown(url: str) -> str:
    return url.removeprefix("file://")  # local paths as the user typed them
