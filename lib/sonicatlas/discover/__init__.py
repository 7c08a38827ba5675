"""Discovery over a run: similar songs, playlists, search, artist profiles, new tracks placed.

Every query reads the run's ``query/`` data (the standardised features beside the ids, written
by cluster-tracks) and the few ``assignments/`` rows it shows; nothing re-reads the input
catalog. ``querydata`` opens a run and its model; ``similar`` ranks tracks by cosine or
euclidean; ``playlist`` builds one from a cluster or seed tracks; ``search`` finds tracks and
artists by part of a name; ``artists`` profiles an artist; ``assign`` places a new catalog
into a run's clusters.
"""

from sonicatlas.lazy import exports

__getattr__, __dir__ = exports(__name__, {
    "open_query_run": "querydata", "load_matrix": "querydata", "load_model": "querydata",
    "TrackMatrix": "querydata", "QueryRun": "querydata",
    "similar_to": "similar", "similar_tracks": "similar",
    "make_playlist": "playlist", "Playlist": "playlist",
    "NameIndex": "search", "search_tracks": "search",
    "artist_profile": "artists", "artist_means": "artists", "similar_artists": "artists",
    "assign_catalog": "assign",
})
__all__ = __dir__()
