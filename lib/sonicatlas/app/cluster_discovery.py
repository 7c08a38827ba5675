"""The explorer's discovery for a run held on a Dask cluster: the CLI's queries, on the run.

Search, similar songs, artist profiles and playlists are the :mod:`sonicatlas.discover`
functions the ``search``, ``similar``, ``artist`` and ``playlist`` commands call: a task per
part of the run on the workers, one merge here, so the answers are the CLI's and the in-memory
app's. The tabs pick tracks by a row number; here it is a row of :attr:`ClusterDiscovery.tracks`,
the small table of the tracks this server has shown so far.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sonicatlas.app.discovery import SHOWN
from sonicatlas.contract import TRACK_ID
from sonicatlas.discover.artists import ArtistProfile, artist_profile
from sonicatlas.discover.playlist import Playlist, make_playlist
from sonicatlas.discover.querydata import open_query_run
from sonicatlas.discover.search import search_tracks
from sonicatlas.discover.similar import SCORE, check_count, check_metric, similar_tracks
from sonicatlas.errors import InputError


class ClusterDiscovery:
    """Search, similar songs, artists and playlists over a run's files, on the current Dask
    client.

    Parameters
    ----------
    run : str
        The run directory, which the workers can read.
    storage_options : dict, optional
    """

    def __init__(self, run: str, storage_options: dict | None = None):
        self.run = open_query_run(run, storage_options)
        columns = [TRACK_ID, *(c for c in SHOWN if c in (*self.run.carried, "cluster_name"))]
        self.tracks = pd.DataFrame({c: pd.Series(dtype="object") for c in columns})

    def warm(self) -> ClusterDiscovery:
        """Nothing to prepare: every query reads the run where it lies."""
        return self

    def locate(self, found: pd.DataFrame) -> int:
        """Row in :attr:`tracks` of the first track of ``found`` (added when new)."""
        return int(self._remember(found.head(1))[0])

    def _remember(self, found: pd.DataFrame) -> np.ndarray:
        ids = found[TRACK_ID].astype(str)
        known = pd.Index(self.tracks[TRACK_ID].astype(str))
        new = found.loc[~ids.isin(known).to_numpy(), [c for c in self.tracks.columns
                                                      if c in found]]
        if len(new):
            self.tracks = pd.concat([self.tracks, new.astype(object)], ignore_index=True)
        return pd.Index(self.tracks[TRACK_ID].astype(str)).get_indexer(ids)

    def search(self, text: str, where: str = "both", n: int = 20) -> pd.DataFrame:
        """The best ``n`` tracks whose name and/or artist contains ``text`` (see
        :func:`sonicatlas.discover.search.search_tracks`), with their ``position``."""
        found = search_tracks(self.run, text, where, n)
        found["position"] = self._remember(found)
        return found

    def similar(self, position: int, n: int = 10, metric: str = "cosine",
                same_cluster: bool = False) -> pd.DataFrame:
        """The ``n`` songs most like the track at ``position`` (see
        :func:`sonicatlas.discover.similar.similar_tracks`)."""
        check_metric(metric)
        check_count(n, "n")
        _, found = similar_tracks(self.run, str(self.tracks[TRACK_ID].iat[position]), n,
                                  metric, same_cluster)
        score = SCORE[metric]
        columns = ["rank", score, TRACK_ID, *(c for c in SHOWN if c in found)]
        out = found[columns].reset_index(drop=True)
        out["position"] = self._remember(found)
        return out

    def artist(self, name: str, n_similar: int = 10, n_typical: int = 5,
               min_tracks: int = 3) -> ArtistProfile:
        """The profile of the artist named ``name`` (see
        :func:`sonicatlas.discover.artists.artist_profile`)."""
        if not str(name).strip():
            raise InputError("this track has no artist name")
        return artist_profile(self.run, name, n_similar, n_typical, min_tracks)

    def playlist(self, cluster: int | str | None = None, seeds: tuple[str, ...] = (),
                 size: int = 30, min_similarity: float = 0.8, max_per_artist: int = 2,
                 order: str = "similarity") -> Playlist:
        """A playlist by :func:`sonicatlas.discover.playlist.make_playlist`."""
        return make_playlist(self.run, cluster, tuple(seeds), size, min_similarity,
                             max_per_artist, order)
