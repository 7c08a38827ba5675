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


#: Column names the usual exports use, recognised without a mapping (compared case-blind),
#: by contract column; where a file has several, the first listed wins.
USUAL_NAMES: dict[str, tuple[str, ...]] = {
    "track_id": ("track_id", "id", "spotify_id", "song_id"),
    "track_name": ("track_name", "name", "song", "song_name", "title", "track_title"),
    "artist_name": ("artist_name", "artist", "artists", "track_artist"),
    "album_name": ("album_name", "album", "track_album_name"),
    "album_id": ("album_id", "track_album_id"),
    "release_date": ("release_date", "track_album_release_date", "album_release_date"),
    "release_year": ("release_year", "year"),
    "genre": ("genre", "genres", "playlist_genre", "track_genre"),
    "subgenre": ("subgenre", "playlist_subgenre"),
    "popularity": ("popularity", "track_popularity"),
    "explicit": ("explicit",),
}


def recognise_columns(header: list[str], mapping: dict[str, str],
                      targets: tuple[str, ...]) -> dict[str, str]:
    """Source -> contract name for every column of ``header`` that becomes a catalog column.

    The user's ``mapping`` comes first, then a column already named as in the contract, then
    the usual names of :data:`USUAL_NAMES`. A contract column claimed twice by the user's
    mapping or exact names raises; a usual name whose target is taken is left out (and so
    listed as dropped by the caller).

    Parameters
    ----------
    header : list of str
        The input's column names, in file order.
    mapping : dict of str to str
        The user's source -> contract mapping, already checked by :func:`check_mapping`.
    targets : tuple of str
        The contract columns a catalog may have.

    Returns
    -------
    dict[str, str]
        Source column -> contract column, in header order.
    """
    chosen: dict[str, str] = {}
    source_of: dict[str, str] = {}
    for col in header:
        target = mapping.get(col, col)
        if target in targets:
            if target in source_of:
                raise InputError(f"both {source_of[target]!r} and {col!r} would become "
                                 f"{target!r}; map or rename one of them")
            chosen[col], source_of[target] = target, col
    lowered = {col.strip().lower(): col for col in reversed(header) if col not in chosen}
    for target, names in USUAL_NAMES.items():
        if target in source_of or target not in targets:
            continue
        for name in names:
            col = lowered.get(name)
            if col is not None and col not in mapping and col not in chosen:
                chosen[col], source_of[target] = target, col
                break
    return {col: chosen[col] for col in header if col in chosen}
