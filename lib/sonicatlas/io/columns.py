"""Column mappings: the user's column names onto the catalog contract's.

A mapping is given as ``--columns their_name=contract_name,...`` on the command line or as the
``columns:`` of a YAML source file (``conf/sources/*.yaml``); both are checked alike.
"""

from __future__ import annotations

import fsspec
import yaml

from sonicatlas.errors import InputError


def parse_column_mapping(text: str) -> dict[str, str]:
    """Parse a ``--columns`` option into a source -> contract column mapping.

    Parameters
    ----------
    text : str
        Comma-separated ``their_name=contract_name`` pairs; blank means no mapping.

    Returns
    -------
    dict[str, str]
        Source column name -> target (contract) column name.

    Raises
    ------
    InputError
        A pair without exactly one ``=``, an empty name, a source given twice, or two
        sources mapped to one target. (``InputError`` is a ``ValueError``.)
    """
    pairs = []
    for item in text.split(",") if text.strip() else []:
        source, sep, target = item.partition("=")
        if not sep or "=" in target:
            raise InputError(f"malformed column mapping {item.strip()!r} in {text!r}: "
                             "expected their_name=contract_name[,...]")
        pairs.append((source.strip(), target.strip()))
    return check_mapping(pairs, f"--columns {text!r}")


def load_column_mapping(yaml_path: str) -> dict[str, str]:
    """Read the ``columns:`` mapping of a source file such as ``conf/sources/*.yaml``.

    Parameters
    ----------
    yaml_path : str
        Local path or fsspec URL of a YAML document with a ``columns`` mapping.

    Returns
    -------
    dict[str, str]
        Source column name -> contract column name, checked as by :func:`parse_column_mapping`.
    """
    with fsspec.open(yaml_path, "rt") as f:
        doc = yaml.safe_load(f)
    if not isinstance(doc, dict) or not isinstance(doc.get("columns") or {}, dict):
        raise InputError(f"{yaml_path}: expected a 'columns:' mapping of their_name: contract_name")
    return check_mapping(list((doc.get("columns") or {}).items()), yaml_path)


def check_mapping(pairs: list, origin: str) -> dict[str, str]:
    """``pairs`` of (source, contract name) as a dict, after checking them.

    Raises
    ------
    InputError
        A name that is not a non-empty string, a source given twice, or two sources mapped to
        one target; the message names ``origin``.
    """
    mapping: dict[str, str] = {}
    source_of: dict[str, str] = {}
    for source, target in pairs:
        # YAML 1.1 reads unquoted yes/no/on/off as booleans, hence the type check.
        if not (isinstance(source, str) and isinstance(target, str) and source and target):
            raise InputError(f"bad column mapping {source!r}={target!r} in {origin}: "
                             "both names must be non-empty strings")
        if source in mapping:
            raise InputError(f"column {source!r} is mapped twice in {origin}")
        if target in source_of:
            raise InputError(f"columns {source_of[target]!r} and {source!r} are both mapped "
                             f"to {target!r} in {origin}")
        mapping[source], source_of[target] = target, source
    return mapping
