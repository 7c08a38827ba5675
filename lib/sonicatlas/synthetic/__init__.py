"""Synthetic data: realistic catalogs and listening logs, made on the workers.

``params`` learns per-genre copulas of the audio features from real data (shipped in
``sonicatlas/data``); ``tracks`` draws catalogs from them, a partition per task;
``listeners`` makes users in planted taste groups, and ``listens`` their listening logs over
a catalog; ``sample`` is the built-in sample the jobs use when no input is given.
"""

from sonicatlas.lazy import exports

__getattr__, __dir__ = exports(__name__, {
    "generate_tracks": "tracks", "generate_listens": "listens", "sample_catalog": "sample",
})
__all__ = __dir__()
