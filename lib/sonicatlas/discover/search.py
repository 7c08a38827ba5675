"""Find tracks and artists by part of a name: case- and accent-insensitive, best match first.

Names and the query are folded the same way: Unicode NFKD (so "é" is "e" plus a combining
accent, and full-width letters are plain ones), combining marks removed, lower case, spaces
collapsed. This runs inside Arrow's compute kernels (utf8proc and RE2), about 1 s per million
names here, a third of a Python loop calling ``unicodedata`` per name; and it keeps every
script as it is, where a transliteration (``text-unidecode``) would make Cyrillic or Japanese
titles match Latin queries that merely sound alike. Ranking: exact
match, then prefix, then substring; within each, the more popular first (where the run carried
``popularity``), then by name and track id.
"""

from __future__ import annotations

import dask
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from sonicatlas.contract import ARTIST, CLUSTER, TRACK_ID
from sonicatlas.discover.querydata import QueryRun, open_query_run, read_assigned, with_metadata
from sonicatlas.errors import InputError

NAME = "track_name"
POPULARITY = "popularity"
WHERE = ("name", "artist", "both")
MATCH = ("exact", "prefix", "substring")


def fold(values) -> pa.Array:
    """Names folded for matching: NFKD, no combining marks, lower case, single spaces."""
    array = values if isinstance(values, (pa.Array, pa.ChunkedArray)) else pa.array(
        values, pa.string())
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if not pa.types.is_string(array.type) and not pa.types.is_large_string(array.type):
        array = array.cast(pa.string())
    array = pc.utf8_normalize(array, form="NFKD")
    array = pc.replace_substring_regex(array, pattern=r"\p{Mn}+", replacement="")
    array = pc.replace_substring_regex(pc.utf8_lower(array), pattern=r"\s+", replacement=" ")
    return pc.utf8_trim(array, characters=" ")


def fold_text(text: str) -> str:
    """One query folded as :func:`fold` folds names; an empty query is an error."""
    folded = fold([str(text)])[0].as_py() if text is not None else ""
    if not folded:
        raise InputError("the search text is empty; give part of a track or artist name")
    return folded


def match_tiers(folded, folded_query: str) -> np.ndarray:
    """0 exact, 1 prefix, 2 substring, 3 no match, for each folded name (missing: no match)."""
    def mask(matches) -> np.ndarray:
        return pc.fill_null(matches, False).to_numpy(zero_copy_only=False)
    inside = mask(pc.match_substring(folded, folded_query))
    tiers = np.where(inside, 2, 3).astype(np.int8)
    if inside.any():  # prefix and exact only among the substring matches
        rows = np.flatnonzero(inside)
        few = folded.take(pa.array(rows))
        tiers[rows[mask(pc.starts_with(few, folded_query))]] = 1
        tiers[rows[mask(pc.equal(few, folded_query))]] = 0
    return tiers


class NameIndex:
    """Folded names of a set of tracks held in memory, so a search is a few Arrow kernels.

    Parameters
    ----------
    frame : pandas.DataFrame
        ``track_id`` and ``track_name`` and/or ``artist_name`` (text or categorical);
        ``popularity`` if known.
    """

    def __init__(self, frame: pd.DataFrame):
        self.frame = frame
        # a categorical column is folded once per distinct name, then spread by its codes
        self.folded, self._codes = {}, {}
        for f in (NAME, ARTIST):
            if f in frame and isinstance(frame[f].dtype, pd.CategoricalDtype):
                labels = frame[f].cat.categories.astype(str)
                self.folded[f] = fold(pa.array(labels, pa.string()))
                self._codes[f] = frame[f].cat.codes.to_numpy()
            elif f in frame:
                self.folded[f] = fold(pa.array(frame[f], pa.string()))
        popularity = (pd.to_numeric(frame[POPULARITY], errors="coerce").to_numpy(np.float64)
                      if POPULARITY in frame else np.zeros(len(frame)))
        self._unpopular = np.where(np.isnan(popularity), np.inf, -popularity)

    def search(self, text: str, where: str = "both", n: int = 20, artist: str | None = None
               ) -> pd.DataFrame:
        """The best ``n`` rows matching ``text``, with ``match`` (exact, prefix, substring).

        ``where`` is name, artist or both (a row's better match counts); ``artist`` keeps only
        rows whose artist name contains it.
        """
        query = fold_text(text)
        if where not in WHERE:
            raise InputError(f"unknown --in {where!r}; choose one of {', '.join(WHERE)}")
        fields = [f for f in {"name": [NAME], "artist": [ARTIST], "both": [NAME, ARTIST]}[where]
                  if f in self.folded]
        if not fields:
            raise InputError(f"the run carried no {NAME if where == 'name' else ARTIST} "
                             "to search")
        tiers = np.min([self._tiers(f, query) for f in fields], axis=0)
        if artist is not None:
            if ARTIST not in self.folded:
                raise InputError(f"the run carried no {ARTIST} to filter on")
            tiers = np.where(self._tiers(ARTIST, fold_text(artist)) < 3, tiers, 3)
        hits = np.flatnonzero(tiers < 3)
        # numbers first: only the rows tied with the n-th on (match, popularity) are sorted
        # by name and id, not every match of a short query
        order = hits[np.lexsort((self._unpopular[hits], tiers[hits]))]
        if len(order) > n:
            last = (tiers[order[n - 1]], self._unpopular[order[n - 1]])
            tail = (tiers[order[n:]] == last[0]) & (self._unpopular[order[n:]] == last[1])
            order = order[:n + int(np.argmin(tail)) if not tail.all() else len(order)]
        found = self.frame.iloc[order].copy()
        found["position"] = order
        found["match"] = pd.Categorical.from_codes(tiers[order], categories=list(MATCH))
        return rank_matches(found, n)


    def _tiers(self, field: str, query: str) -> np.ndarray:
        """Each row's match of ``query`` in ``field`` (3: none)."""
        tiers = match_tiers(self.folded[field], query)
        codes = self._codes.get(field)
        return tiers if codes is None else np.where(codes >= 0, tiers[np.maximum(codes, 0)], 3)


def search_frame(frame: pd.DataFrame, text: str, where: str = "both", n: int = 20,
                 artist: str | None = None) -> pd.DataFrame:
    """:meth:`NameIndex.search` over ``frame``, its names folded for this one search."""
    return NameIndex(frame).search(text, where, n, artist)


def rank_matches(found: pd.DataFrame, n: int) -> pd.DataFrame:
    """``found`` ordered exact > prefix > substring, then by popularity, name and id."""
    keys = [found[TRACK_ID].astype(str).to_numpy()]
    if NAME in found:
        keys.insert(0, found[NAME].astype("string").fillna("").astype(str).to_numpy())
    if POPULARITY in found:
        popularity = pd.to_numeric(found[POPULARITY], errors="coerce").to_numpy(np.float64)
        keys.insert(0, np.where(np.isnan(popularity), np.inf, -popularity))
    keys.insert(0, pd.Categorical(found["match"], categories=list(MATCH)).codes)
    order = np.lexsort(keys[::-1])[:n]
    return found.iloc[order].reset_index(drop=True)


def _search_part(run: QueryRun, part: str, text: str, where: str, n: int,
                 artist: str | None) -> pd.DataFrame:
    columns = [TRACK_ID, CLUSTER, *(c for c in (NAME, ARTIST, POPULARITY) if c in run.carried)]
    found = search_frame(read_assigned(run, part, columns), text, where, n, artist)
    found["part"] = part
    return found


def search_tracks(run: QueryRun | str, text: str, where: str = "both", n: int = 20,
                  artist: str | None = None) -> pd.DataFrame:
    """Tracks of a run whose name (or artist) contains ``text``, best first.

    Each partition ranks its own matches on a worker; the best ``n`` of those are merged
    here and joined to their metadata.

    Returns
    -------
    pandas.DataFrame
        ``rank``, ``track_id``, ``match``, ``cluster``, ``cluster_name`` and the carried
        metadata.

    Raises
    ------
    InputError
        Empty query, unknown ``where``, or a run that carried no names.
    """
    run = open_query_run(run)
    fold_text(text)  # an empty query fails here, before any task
    if artist is not None:
        fold_text(artist)
    task = dask.delayed(_search_part, pure=True)
    parts = dask.compute(*(task(run, part, text, where, n, artist) for part in run.parts))
    found = rank_matches(pd.concat(parts, ignore_index=True), n)
    found = found[[TRACK_ID, "match", "part", "position"]]
    out = with_metadata(run, found)
    out.insert(0, "rank", np.arange(1, len(out) + 1))
    return out
