"""The explorer's discovery: search, similar songs, artist profiles and playlists.

The answers come from :mod:`sonicatlas.discover`, the library behind the CLI's ``search``,
``similar``, ``artist`` and ``playlist`` commands, applied to the run the explorer already
holds in memory (its standardised features, row for row with its tracks), so a query is one
pass over that matrix rather than a read of the run. The rules (ranking, ties by track id,
the playlist's threshold and per-artist cap, the flow order) are the library's.
"""

from __future__ import annotations

from functools import cached_property

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from sonicatlas.app.data import RunData
from sonicatlas.contract import ARTIST, CLUSTER, CLUSTER_NAME, TRACK_ID
from sonicatlas.discover.artists import TRACKS, ArtistProfile, similar_artists
from sonicatlas.discover.playlist import (
    Playlist,
    capped,
    check_rules,
    flow_order,
    mean_step,
    steps,
)
from sonicatlas.discover.search import NameIndex
from sonicatlas.discover.similar import scores, similar_to, top_n
from sonicatlas.errors import InputError
from sonicatlas.modeling.model import ClusterModel
from sonicatlas.runs.export import resolve_cluster

#: Columns a result table shows, when the run carried them.
SHOWN = ("track_name", ARTIST, "genre", "popularity", CLUSTER_NAME)


class Discovery:
    """Search, similar songs, artists and playlists over a run held by the explorer.

    Parameters
    ----------
    data : RunData
        A run loaded with its query data (``data.vectors``).

    Raises
    ------
    InputError
        The run has no query data.
    """

    def __init__(self, data: RunData):
        if data.vectors is None:
            raise InputError(f"{data.run} has no query data (query/); re-run cluster-tracks "
                             "to make it searchable")
        self.data = data
        self.tracks = data.tracks
        self.vectors = data.vectors
        self.ids = pa.array(data.tracks[TRACK_ID].astype(str), pa.string())

    def warm(self) -> Discovery:
        """Fold the names and sum the artists' profiles now, not on the first query."""
        self._names  # noqa: B018 - cached on first access
        if ARTIST in self.tracks:
            self.artist_means  # noqa: B018
        return self

    def locate(self, found: pd.DataFrame) -> int:
        """Row in the run's tracks of the first track of ``found``, a slice of them."""
        return int(found.index[0])

    # --- search ------------------------------------------------------------------------------

    @cached_property
    def _names(self) -> NameIndex:
        """The tracks' names, each distinct one folded once (they are categoricals)."""
        return NameIndex(self.tracks[[c for c in (TRACK_ID, *SHOWN) if c in self.tracks]])

    def search(self, text: str, where: str = "both", n: int = 20) -> pd.DataFrame:
        """The best ``n`` tracks whose name and/or artist contains ``text``.

        Returns
        -------
        pandas.DataFrame
            ``position`` (row in the run's tracks), ``track_id``, the shown metadata and
            ``match`` (exact, prefix or substring), ranked as ``sonicatlas search`` ranks.
        """
        return self._names.search(text, where, n)

    def _rows(self, positions: np.ndarray) -> pd.DataFrame:
        columns = [c for c in (TRACK_ID, *SHOWN) if c in self.tracks]
        return self.tracks.iloc[positions][columns].reset_index(drop=True)

    # --- similar songs -----------------------------------------------------------------------

    def position(self, track_id: str) -> int:
        """Row of ``track_id`` in the run's tracks."""
        hits = np.flatnonzero(pc.equal(self.ids, pa.scalar(str(track_id))).to_numpy(
            zero_copy_only=False))
        if not len(hits):
            raise InputError(f"unknown track id {track_id!r}")
        return int(hits[0])

    def similar(self, position: int, n: int = 10, metric: str = "cosine",
                same_cluster: bool = False) -> pd.DataFrame:
        """The ``n`` songs most like the track at ``position``, exact, ties by track id.

        Returns
        -------
        pandas.DataFrame
            ``rank``, ``similarity`` (or ``distance``), ``track_id``, the shown metadata and
            ``position``.
        """
        mask = None
        if same_cluster:
            clusters = self.tracks[CLUSTER].to_numpy()
            mask = clusters == clusters[position]
        # one more than asked, then the query's own row dropped: the same answer as the
        # library's exclude, without comparing every id with the query's
        hits = similar_to(self.vectors, self.ids, self.vectors[position], n + 1, metric,
                          mask=mask)
        hits = hits[hits["position"].to_numpy() != position].head(n)
        out = self._rows(hits["position"].to_numpy())
        score = hits.columns[-1]
        out.insert(0, score, hits[score].to_numpy())
        out.insert(0, "rank", np.arange(1, len(out) + 1))
        out["position"] = hits["position"].to_numpy()
        return out

    # --- artists -----------------------------------------------------------------------------

    @cached_property
    def artist_means(self) -> pd.DataFrame:
        """Every artist's track count and mean standardised profile (as
        :func:`sonicatlas.discover.artists.artist_means` gives it for a run on disk)."""
        if ARTIST not in self.tracks:
            raise InputError(f"{self.data.run} carried no {ARTIST}; artist profiles need it")
        column = self.tracks[ARTIST]
        codes = column.cat.codes.to_numpy()
        size = len(column.cat.categories)
        known = codes >= 0
        counts = np.bincount(codes[known], minlength=size)
        means = pd.DataFrame({TRACKS: counts}, index=column.cat.categories.astype(str))
        for j, feature in enumerate(self.data.features):
            sums = np.bincount(codes[known], weights=self.vectors[known, j], minlength=size)
            means[feature] = sums / np.maximum(counts, 1)
        means.index.name = ARTIST
        return means[(counts > 0) & (means.index != "")].sort_index()

    def artist(self, name: str, n_similar: int = 10, n_typical: int = 5,
               min_tracks: int = 3) -> ArtistProfile:
        """The profile of the artist named exactly ``name`` (see
        :class:`sonicatlas.discover.artists.ArtistProfile`)."""
        means = self.artist_means
        if name not in means.index:
            raise InputError(f"no artist named {name!r} in this run")
        column = self.tracks[ARTIST]
        rows = np.flatnonzero(column.cat.codes.to_numpy() ==
                              column.cat.categories.get_loc(name))
        clusters = self.tracks[CLUSTER].to_numpy()[rows]
        ids, counts = np.unique(clusters, return_counts=True)
        order = np.lexsort((ids, -counts))
        table = pd.DataFrame({CLUSTER: ids[order], CLUSTER_NAME:
                              [self._name(c) for c in ids[order]],
                              TRACKS: counts[order], "share": counts[order] / len(rows)})
        z = self.vectors[rows].astype(np.float64).mean(axis=0)
        mean, std = self._model.scale_mean, self._model.scale_std
        at = [self._model.features.index(f) for f in self.data.features]
        profile = pd.DataFrame({"feature": self.data.features,
                                "artist_mean": z * np.asarray(std)[at] + np.asarray(mean)[at],
                                "catalog_mean": np.asarray(mean)[at], "z": z})
        near = similar_to(self.vectors[rows], self.ids.take(pa.array(rows)), z, n_typical,
                          "euclidean")
        typical = self._rows(rows[near["position"].to_numpy()])
        typical.insert(0, "distance", near["distance"].to_numpy())
        typical.insert(0, "rank", np.arange(1, len(typical) + 1))
        return ArtistProfile(name, len(rows), table, profile, typical,
                             similar_artists(means, name, n_similar, min_tracks))

    def _name(self, cluster: int) -> str:
        return self.data.names[cluster] if 0 <= cluster < len(self.data.names) else "Noise"

    @cached_property
    def _model(self) -> ClusterModel:
        return ClusterModel.load(f"{self.data.run.rstrip('/')}/model")

    # --- playlists ---------------------------------------------------------------------------

    def playlist(self, cluster: int | str | None = None, seeds: tuple[str, ...] = (),
                 size: int = 30, min_similarity: float = 0.8, max_per_artist: int = 2,
                 order: str = "similarity") -> Playlist:
        """A playlist by the rules of :func:`sonicatlas.discover.playlist.make_playlist`,
        over the tracks in memory.

        Raises
        ------
        InputError
            Rules out of range, an unknown cluster or seed, or both or neither of ``cluster``
            and ``seeds``.
        """
        check_rules(size, min_similarity, max_per_artist, order)
        if (cluster is None) == (not seeds):
            raise InputError("give either a cluster or seed tracks")
        similarity_ok = np.ones(len(self.tracks), dtype=bool)
        if cluster is not None:
            chosen, name = resolve_cluster(self.data.profiles, cluster)
            target = np.asarray(self._model.centers[chosen], dtype=np.float64)
            at = [self._model.features.index(f) for f in self.data.features]
            target, what = target[at], f"the centre of cluster {chosen} ({name})"
            similarity_ok &= self.tracks[CLUSTER].to_numpy() == chosen
        else:
            positions = [self.position(s) for s in seeds]
            target = self.vectors[positions].astype(np.float64).mean(axis=0)
            what = f"the mean of {len(seeds)} seed track{'s' if len(seeds) > 1 else ''}"
            similarity_ok[positions] = False
        similarity = scores(self.vectors, target, "cosine")
        similarity_ok &= similarity >= min_similarity
        qualified = int(similarity_ok.sum())
        keys = np.where(similarity_ok, -similarity, np.inf)
        artists = (self.tracks[ARTIST] if ARTIST in self.tracks else None)
        limit = 4 * int(size)
        while True:  # the best tracks, widened until the per-artist cap leaves enough
            positions, names = top_n(keys, self.ids, min(limit, qualified))
            by = (np.full(len(positions), None, dtype=object) if artists is None else
                  artists.iloc[positions].astype(str).replace("", None).to_numpy(dtype=object))
            kept = capped(names, by, int(max_per_artist), stop=int(size))
            if len(kept) >= size or limit >= qualified:
                break
            limit *= 4
        rows = positions[kept]
        vectors = self.vectors[rows].astype(np.float64)
        table = self._rows(rows)
        table.insert(1, "similarity", similarity[rows])
        if order == "flow":
            chain = flow_order(vectors)
            table, vectors = table.iloc[chain].reset_index(drop=True), vectors[chain]
            table["step"] = np.concatenate([[0.0], steps(vectors)]) if len(vectors) else []
        table.insert(0, "rank", np.arange(1, len(table) + 1))
        return Playlist(table, qualified, what, mean_step(vectors))
