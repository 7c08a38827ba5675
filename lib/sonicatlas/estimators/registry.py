"""Every clustering method of the job by name (``algorithm:`` and ``compare:`` in the config)."""

from __future__ import annotations

from sonicatlas.estimators.density import DBSCAN, HDBSCAN, MeanShift
from sonicatlas.estimators.kmeans import KMeans
from sonicatlas.estimators.minibatch import MiniBatchKMeans
from sonicatlas.estimators.sampled import Agglomerative, GaussianMixture

_WITH_K = {"kmeans": (KMeans, "n_clusters"), "minibatch": (MiniBatchKMeans, "n_clusters"),
           "gmm": (GaussianMixture, "n_components"),
           "agglomerative": (Agglomerative, "n_clusters")}
_WITHOUT_K = ("dbscan", "hdbscan", "meanshift")
METHOD_NAMES = (*_WITH_K, *_WITHOUT_K)


def make_method(name: str, k: int | None, params: dict | None = None, random_state=0):
    """A clustering estimator by name.

    Parameters
    ----------
    name : str
        One of ``METHOD_NAMES``: ``kmeans`` (:class:`KMeans`), ``minibatch``, ``gmm``,
        ``agglomerative``, ``dbscan``, ``hdbscan``, ``meanshift``.
    k : int or None
        Number of clusters; required by the first four, ignored by ``dbscan``, ``hdbscan`` and
        ``meanshift``, which find the number themselves.
    params : dict, optional
        Further constructor arguments (e.g. ``{"sample_size": 5000}``).
    random_state : int, numpy.random.RandomState or None

    Returns
    -------
    estimator
        Unfitted.
    """
    params = dict(params or {})
    if name in _WITH_K:
        if k is None:
            raise ValueError(f"method {name!r} needs a number of clusters k")
        cls, k_param = _WITH_K[name]
        return cls(**{**params, k_param: k, "random_state": random_state})
    if name in _WITHOUT_K:
        cls = {"dbscan": DBSCAN, "hdbscan": HDBSCAN, "meanshift": MeanShift}[name]
        return cls(**{**params, "random_state": random_state})
    raise ValueError(f"unknown clustering method {name!r}; valid names: "
                     f"{', '.join(METHOD_NAMES)}")
