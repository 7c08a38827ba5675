"""The explorer: an interactive Panel app over a cluster-tracks run.

``data`` loads a run's tracks for it (``cluster_data`` persists them on a Dask cluster
instead, and ``access`` is how views reach either); ``filters`` holds the filter state
every view follows; ``views`` and ``map`` draw the overview, the clusters and the Datashader
map; ``downloads`` streams the selection to the browser; ``layout`` assembles them
(:func:`explorer`, also for notebooks); ``server`` serves it on 127.0.0.1
(``sonicatlas serve``).
"""

from sonicatlas.lazy import exports

__getattr__, __dir__ = exports(__name__, {"explorer": "layout", "read_run": "data",
                                          "read_run_on_cluster": "cluster_data",
                                          "serve": "server"})
__all__ = __dir__()
