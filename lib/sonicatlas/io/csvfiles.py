"""CSV files as text, block by block, with the line each row starts on.

The files are split into byte blocks at line ends (as ``dask.dataframe.read_csv`` does); each
block's first line number is one plus the line ends before it, counted from the same bytes
the block is parsed from, so every row knows its line in its own file (the header is line 1).
Blank lines are counted but are not rows. A quoted field that spans lines shifts the numbers
of the rows after it in that block.

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
    start = int(first_line) + (1 if has_header else 0)
    frame[SOURCE_FILE] = path
    frame[SOURCE_LINE] = pd.RangeIndex(start, start + len(frame)).to_numpy()
    if _BLANK_LINE.search(block):
        # Counted for the line numbers, then left out, as pandas leaves out blank lines;
        # only where each row is one line (no quoted line breaks), else they stay rows.
        lines = block.split(b"\n")[1 if has_header else 0:]
        if lines and lines[-1] == b"":
            lines.pop()  # the end of the last line
        if len(lines) == len(frame):
            kept = np.array([bool(line.strip(b"\r")) for line in lines], dtype=bool)
            frame = frame if kept.all() else frame[kept]
    return frame.reset_index(drop=True)


_BLANK_LINE = re.compile(rb"(?:^|\n)\r?(?:\n|$)")


def _shown(url: str) -> str:
    return url.removeprefix("file://")  # local paths as the user typed them
