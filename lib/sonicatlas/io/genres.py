"""Genre cells as datasets write them: one genre, a list of several, or an empty marker.

A cell may hold several genres separated by :data:`~sonicatlas.contract.GENRE_SEPARATOR` or by
commas (``"hip hop, pop"``), optionally written as a Python or JSON list or set
(``"['pop', 'rock']"``, ``"{'pop'}"``). Empty markers (``""``, ``"[]"``, ``"set()"``, ``"{}"``)
and missing values mean no genre.
"""

from __future__ import annotations

import re

import pandas as pd

from sonicatlas.contract import GENRE_SEPARATOR

#: What datasets write for "no genre".
EMPTY_MARKERS = frozenset({"", "[]", "{}", "()", "set()", "none", "nan", "null", "<na>"})

_SPLIT = re.compile(rf"[{re.escape(GENRE_SEPARATOR)},]")
_QUOTES = "'\" "


def split_genres(value) -> list[str]:
    """The genres of one cell, in order, each once; ``[]`` for a missing or empty one.

    Examples
    --------
    >>> split_genres("hip hop, pop")
    ['hip hop', 'pop']
    >>> split_genres("set()")
    []
    """
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return []
    text = str(value).strip()
    if text.lower() in EMPTY_MARKERS:
        return []
    if text[:1] in "[{(" and text[-1:] in "]})":
        text = text[1:-1]
    genres = []
    for piece in _SPLIT.split(text):
        genre = piece.strip(_QUOTES)
        if genre and genre.lower() not in EMPTY_MARKERS and genre not in genres:
            genres.append(genre)
    return genres


def join_genres(cells) -> str | None:
    """Every genre of several cells, each once in order of appearance, joined by
    :data:`~sonicatlas.contract.GENRE_SEPARATOR`; ``None`` when there is none."""
    genres: list[str] = []
    for cell in cells:
        genres += [g for g in split_genres(cell) if g not in genres]
    return GENRE_SEPARATOR.join(genres) if genres else None
