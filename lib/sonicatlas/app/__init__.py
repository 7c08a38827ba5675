"""The explorer: an interactive Panel app over a cluster-tracks run.

``data`` loads a run's tracks for it; ``filters`` holds the filter state every view follows;
``views`` and ``map`` draw the overview, the clusters and the Datashader map; ``downloads``
streams the selection to the browser; ``layout`` assembles them (:func:`explorer`, also for
notebooks); ``server`` serves it on 127.0.0.1 (``sonicatlas serve``).
"""

from sonicatlas.lazy import exports

__getattr__, __dir__ = exports(__name__, {"explorer": "layout", "read_run": "data",
                                          "serve": "server"})
__all__ = __dir__()
