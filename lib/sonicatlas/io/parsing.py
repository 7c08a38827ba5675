"""Text cells of a CSV into the catalog contract's types, with a reason per bad row.

Features and integer metadata are numbers (a fraction in an integer column does not parse),
``explicit`` a boolean (true/false/1/0), ``release_year`` comes from ``release_date`` where
absent; the text is kept beside the typed columns so that a reject shows what was read.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

from sonicatlas.contract import (
    DETAIL,
    FEATURES,
    METADATA,
    REASON,
    REQUIRED,
    SOURCE_FILE,
    SOURCE_LINE,
    TRACK_ID,
)

CATALOG_COLUMNS: tuple[str, ...] = (*REQUIRED, *METADATA)
#: Metadata stored as nullable integers; a fractional value there is unparsable.
INTEGER_METADATA: tuple[str, ...] = ("popularity", "key", "mode", "time_signature", "release_year")
#: ``--id-from`` joins the named columns' stripped values with this separator before hashing.
ID_SEPARATOR = "\x1f"

# A 4-digit group: covers YYYY-MM-DD, YYYY-MM, YYYY and MM/DD/YYYY in the real files.
_YEAR = r"(?<!\d)(\d{4})(?!\d)"
_BOOLEANS = {"true": True, "1": True, "false": False, "0": False}
#: Columns :func:`parse_rows` adds: the text of a column (prefix + name), and whether the row
#: is rejected; "__" cannot clash with contract names.
RAW_PREFIX, REJECTED = "__raw:", "__rejected"


def stable_track_id(values) -> str:
    """The ``--id-from`` id of one row: 16 hex digits of SHA-256 over its values.

    The values (text, stripped of surrounding blanks) are joined with U+001F and encoded as
    UTF-8, so the same artist and title give the same id in every run and on every machine.
    """
    return hashlib.sha256(ID_SEPARATOR.join(values).encode("utf-8")).hexdigest()[:16]


def parse_rows(df: pd.DataFrame, targets: tuple[str, ...], decimal: str = ".",
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
    columns.update({RAW_PREFIX + c: raw[c] for c in targets})
    columns[REASON] = pd.Series(kinds, index=df.index, dtype=str)
    columns[DETAIL] = pd.Series(details, index=df.index, dtype=str)
    columns[REJECTED] = pd.Series(kinds != "", index=df.index, dtype=bool)
    return pd.DataFrame(columns, index=df.index)


def _made_ids(df: pd.DataFrame, id_columns: tuple[str, ...]) -> pd.Series:
    parts = [df[c].fillna("").astype(str).str.strip() for c in id_columns]
    return pd.Series([stable_track_id(row) for row in zip(*parts, strict=True)],
                     index=df.index, dtype=object)


