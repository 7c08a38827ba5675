"""One schema for the files of a catalog whose files were written by different hands.

Numbers of different types are promoted to one (integers of any width and floats: float64;
integers and booleans: int64); a column that is text in some files is read as text everywhere,
so that the row checks name each value that is not a number. Any other disagreement (a date
and a number, say) is an error naming the files and their types, as is a required column
that some files lack.
"""

from __future__ import annotations

import pyarrow as pa

from sonicatlas.errors import MissingColumnsError, WrongTypeError


def _kind(type_: pa.DataType) -> str:
    if pa.types.is_integer(type_):
        return "int"
    if pa.types.is_floating(type_):
        return "float"
    if pa.types.is_string(type_) or pa.types.is_large_string(type_):
        return "text"
    if pa.types.is_null(type_):
        return "null"
    if pa.types.is_boolean(type_):
        return "bool"
    return str(type_)


def common_type(types: list[pa.DataType]) -> pa.DataType | None:
    """The type every one of ``types`` can be read as, or None when there is none."""
    distinct = list(dict.fromkeys(types))
    if len(distinct) == 1:
        return distinct[0]
    kinds = {_kind(t) for t in distinct} - {"null"}
    if not kinds:
        return distinct[0]
    if kinds <= {"int", "bool"}:
        return pa.int64()
    if kinds <= {"int", "bool", "float"}:
        return pa.float64()
    if "text" in kinds:  # numbers, dates, booleans all have a text form
        return pa.string()
    if len(kinds) == 1:  # e.g. timestamps in two units: the first non-null type
        return next(t for t in distinct if _kind(t) != "null")
    return None


def unify(schemas: dict[str, pa.Schema], url: str) -> pa.Schema:
    """One schema for files with these ``schemas`` (path -> schema), columns in first-seen order.

    Raises
    ------
    WrongTypeError
        A column whose types across files have no common type; names the files.
    """
    types: dict[str, list[pa.DataType]] = {}
    where: dict[str, dict[pa.DataType, str]] = {}
    for path, schema in schemas.items():
        for f in schema:
            types.setdefault(f.name, []).append(f.type)
            where.setdefault(f.name, {}).setdefault(f.type, path)
    fields = []
    for name, seen in types.items():
        common = common_type(seen)
        if common is None:
            found = "; ".join(f"{t} in {p}" for t, p in where[name].items())
            raise WrongTypeError(f"catalog at {url}: column {name!r} has types that cannot be "
                                 f"read as one ({found}); rewrite those files with one type")
        fields.append(pa.field(name, common))
    return pa.schema(fields)


def lacking(schemas: dict[str, pa.Schema], columns: list[str]) -> dict[str, list[str]]:
    """For each of ``columns`` missing from some files (but not all): those files."""
    out = {}
    for column in columns:
        without = [path for path, schema in schemas.items() if column not in schema.names]
        if without and len(without) < len(schemas):
            out[column] = without
    return out


def require_everywhere(url: str, schemas: dict[str, pa.Schema], required: list[str]) -> None:
    """A required column missing from some files is an input error naming those files.

    Read on, those files' rows would all be rejects: a share of the catalog lost quietly.

    Parameters
    ----------
    url : str
        The catalog, for the message.
    schemas : dict of str to pyarrow.Schema
        Each file's schema, by path.
    required : list of str
        The input's names of the required columns.

    Raises
    ------
    MissingColumnsError
        Names the first such column, up to five files without it, and the other columns.
    """
    gaps = lacking(schemas, required)
    if gaps:
        column, without = next(iter(gaps.items()))
        shown = ", ".join(p.rsplit("/", 1)[-1] for p in without[:5])
        more = f" and {len(without) - 5} more" if len(without) > 5 else ""
        others = f" (also missing: {', '.join(map(repr, list(gaps)[1:]))})" if len(gaps) > 1 else ""
        raise MissingColumnsError(
            f"catalog at {url}: {column!r} is missing from {len(without)} of {len(schemas)} "
            f"files ({shown}{more}){others}; add it there or leave those files out")
