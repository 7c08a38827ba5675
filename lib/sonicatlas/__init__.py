"""sonicatlas: distributed clustering of music catalogs by how they sound.

The subpackages, from the bottom up: ``estimators`` (what learns from a feature matrix),
``io`` (reading and checking catalogs), ``synthetic`` (generated catalogs and logs),
``evaluate`` (metrics, k sweep, method comparison), ``modeling`` (the steps both jobs share),
``summaries`` (a run's tables), ``visual`` (maps and reports), ``listeners`` (per-user
features), ``runs`` (the run directory and its readers), ``discover`` (queries over a run) and
``app`` (the explorer). ``config``, ``contract``, ``errors`` and ``runtime`` sit at the top
level and ``cli`` above everything. ``explorer(run)`` returns the explorer app of a run.
"""

from sonicatlas.lazy import exports

__version__ = "0.1.0"
__getattr__, __dir__ = exports("sonicatlas.app", {"explorer": "layout"})
