"""Listeners: from a listening log to one row per user.

``lookup`` is the catalog as every worker holds it (id hashes, features, cluster, artist);
``checks`` gives every listen a reject reason or none; ``users`` resolves the accepted listens
against that lookup and reduces them to per-user features (audio profile, cluster shares,
diversity, rhythm); ``segments`` reads the tracks run, builds the users' matrix and names the
segments.
"""

from sonicatlas.lazy import exports

__getattr__, __dir__ = exports(__name__, {
    "check_listens": "checks", "user_features": "users", "name_segments": "segments",
    "track_lookup": "lookup", "TrackLookup": "lookup",
})
__all__ = __dir__()
