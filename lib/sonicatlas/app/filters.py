"""The explorer's filter state: one set of parameters that every view depends on.

A filter is a parameter, not a callback per view: the views are functions of
``Filters.selection``, recomputed once (:meth:`Filters.mask`) when any parameter changes. The
rows kept are :func:`keep_rows` of the filters' state, a function of one table: over the
tracks in this process it is a numpy boolean array, computed column by column without copying
the table; on a cluster, each partition's (see :mod:`sonicatlas.app.access`).
"""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd
import param

from sonicatlas.app.access import LocalTracks
from sonicatlas.contract import ARTIST, CLUSTER_NAME, GENRE_SEPARATOR

#: Filters that are ranges over a numeric column, with the label the user sees.
RANGES = {"popularity": "Popularity", "release_year": "Release year",
          "duration_min": "Duration (minutes)"}


def _bounds(values: pd.Series) -> tuple[float, float] | None:
    finite = values.to_numpy(np.float64)
    finite = finite[np.isfinite(finite)]
    if len(finite) == 0:
        return None
    return float(finite.min()), float(finite.max())


class Filters(param.Parameterized):
    """What the user has narrowed the catalog to.

    Parameters
    ----------
    tracks : pandas.DataFrame or dask.dataframe.DataFrame
        The run's tracks (:class:`sonicatlas.app.data.RunData.tracks`); its columns decide
        which filters exist.
    features : list of str
        Audio features that may be filtered by range.
    genres : list of str
    access : LocalTracks or ClusterTracks, optional
        How the mask is computed (the pandas ``tracks`` in this process by default).
    """

    clusters = param.ListSelector(default=[], objects=[], doc="Clusters shown (none: all)")
    genres = param.ListSelector(default=[], objects=[], doc="Genres shown (none: all)")
    artist = param.String(default="", doc="Part of the artist's name")
    explicit = param.Selector(default="any", objects=["any", "explicit", "clean"])
    popularity = param.Range(default=None, doc="Popularity range")
    release_year = param.Range(default=None, doc="Release year range")
    duration_min = param.Range(default=None, doc="Duration range, minutes")
    feature = param.Selector(default=None, objects=[None], doc="Audio feature to filter")
    feature_range = param.Range(default=None, doc="Range of that feature")
    #: The tracks that pass every filter: computed once per change, read by every view.
    selection = param.Parameter(default=None, doc="Boolean mask over the run's tracks")

    def __init__(self, tracks, features: list[str], genres: list[str], access=None,
                 **params):
        super().__init__(**params)
        self._tracks, self._access = tracks, access or LocalTracks(tracks)
        self._bounds = {}
        self.param.clusters.objects = list(tracks[CLUSTER_NAME].cat.categories)
        self.param.genres.objects = genres
        columns = {"popularity": "popularity", "release_year": "release_year",
                   "duration_min": "duration_ms"}
        present = [c for c in (*columns.values(), *features) if c in tracks]
        found = self._access.reduce(None, functools.partial(_column_bounds, columns=present),
                              _merge_bounds)
        for name, column in columns.items():
            if column in tracks:
                bounds = found[column]
                if bounds and name == "duration_min":
                    bounds = (np.floor(bounds[0] / 60_000), np.ceil(bounds[1] / 60_000))
                if bounds:
                    self._bounds[name] = bounds
                    self.param[name].bounds = bounds
                    setattr(self, name, bounds)
        self.param.feature.objects = [None, *features]
        self._feature_bounds = {f: found[f] for f in features}
        self.selection = self.mask()

    @param.depends("feature", watch=True)
    def _reset_feature_range(self):
        bounds = self._feature_bounds.get(self.feature)
        self.param.feature_range.bounds = bounds
        self.feature_range = bounds

    @property
    def has_explicit(self) -> bool:
        """Whether the run carried the explicit flag."""
        return "explicit" in self._tracks

    def bounds(self, name: str) -> tuple[float, float] | None:
        """The full range of a range filter (None when the run lacks its column)."""
        return self._bounds.get(name) if name != "feature_range" else (
            self._feature_bounds.get(self.feature))

    def reset(self) -> None:
        """Show every track again."""
        with param.parameterized.batch_call_watchers(self):
            self.clusters, self.genres, self.artist, self.explicit = [], [], "", "any"
            for name, bounds in self._bounds.items():
                setattr(self, name, bounds)
            self.feature = None

    @param.depends("clusters", "genres", "artist", "explicit", "popularity", "release_year",
                   "duration_min", "feature", "feature_range", watch=True)
    def _update(self):
        self.selection = self.mask()

    def state(self) -> dict:
        """The filters that narrow the selection, as plain values (what :func:`keep_rows`
        reads)."""
        ranges = []
        for name, column, factor in (("popularity", "popularity", 1.0),
                                     ("release_year", "release_year", 1.0),
                                     ("duration_min", "duration_ms", 60_000.0)):
            chosen = getattr(self, name)
            if chosen is not None and chosen != self._bounds.get(name):
                ranges.append((column, chosen[0] * factor, chosen[1] * factor))
        if self.feature and self.feature_range is not None:
            if self.feature_range != self._feature_bounds.get(self.feature):
                ranges.append((self.feature, *self.feature_range))
        return {"clusters": list(self.clusters), "genres": list(self.genres),
                "artist": self.artist.strip(), "explicit": self.explicit, "ranges": ranges}

    def mask(self):
        """Which tracks pass every filter: a boolean array over the run's tracks (a dask
        Series on a cluster)."""
        return self._access.select(functools.partial(keep_rows, state=self.state()))


def keep_rows(tracks: pd.DataFrame, state: dict) -> np.ndarray:
    """Which rows of ``tracks`` pass the filters ``state`` (see :meth:`Filters.state`)."""
    keep = np.ones(len(tracks), dtype=bool)
    if state["clusters"]:
        keep &= tracks[CLUSTER_NAME].isin(state["clusters"]).to_numpy()
    if state["genres"] and "genre" in tracks:
        keep &= _any_genre(tracks["genre"], state["genres"])
    if state["artist"] and ARTIST in tracks:
        keep &= _contains(tracks[ARTIST], state["artist"])
    if state["explicit"] != "any" and "explicit" in tracks:
        flag = tracks["explicit"].to_numpy(np.float32)
        keep &= flag == (1.0 if state["explicit"] == "explicit" else 0.0)
    for column, low, high in state["ranges"]:
        if column in tracks:
            keep &= _within(tracks[column], low, high)
    return keep


def _column_bounds(tracks: pd.DataFrame, mask, columns: list[str]) -> dict:
    return {c: _bounds(tracks[c]) for c in columns}


def _merge_bounds(parts: list[dict]) -> dict:
    merged = {}
    for part in parts:
        for column, bounds in part.items():
            old = merged.get(column)
            merged[column] = bounds if old is None else old if bounds is None else (
                min(old[0], bounds[0]), max(old[1], bounds[1]))
    return merged


def _within(column: pd.Series, low: float, high: float) -> np.ndarray:
    values = column.to_numpy(np.float64)
    return (values >= low) & (values <= high)


def _on_categories(column: pd.Series, test) -> np.ndarray:
    """``test`` applied to each distinct label once, then spread to the rows by their codes."""
    labels = column.cat.categories.astype(str)
    hit = np.fromiter((test(label) for label in labels), dtype=bool, count=len(labels))
    codes = column.cat.codes.to_numpy()
    return np.where(codes >= 0, hit[np.maximum(codes, 0)], False)


def _contains(column: pd.Series, text: str) -> np.ndarray:
    needle = text.casefold()
    return _on_categories(column, lambda label: needle in label.casefold())


def _any_genre(column: pd.Series, genres: list[str]) -> np.ndarray:
    wanted = set(genres)
    return _on_categories(
        column, lambda label: any(g.strip() in wanted for g in label.split(GENRE_SEPARATOR)))
