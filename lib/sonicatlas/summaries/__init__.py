"""Summaries: the small tables of a run, computed in one pass over the scored tracks.

``scan`` runs several reductions (partial, combine, finish) over the same partitions; the
reductions are ``profiles`` (per-cluster statistics, names, representative tracks) and
``mixes`` (genre and decade mix, per-artist and per-album tables); ``tables`` assembles every
``summary/`` table of a cluster-tracks run; ``methods`` profiles each compared method's
clusters and measures how the methods agree.
"""

from sonicatlas.lazy import exports

__getattr__, __dir__ = exports(__name__, {
    "build_summaries": "tables", "name_clusters": "profiles", "scan": "scan",
    "Reduction": "scan", "method_tables": "methods", "method_profiles": "methods",
})
__all__ = __dir__()
