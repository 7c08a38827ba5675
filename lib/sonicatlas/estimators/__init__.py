"""Estimators: what learns from a feature matrix, on numpy arrays and on dask arrays alike.

Each is a scikit-learn estimator (``fit`` returns self, ``labels_``, ``NotFittedError``,
``n_features_in_`` checked, ``random_state`` as None / int / ``RandomState``, ``clone``,
``Pipeline``; ``conventions`` holds the shared checks) that also takes dask arrays, and then
returns dask arrays. ``StandardScaler`` and ``PCA`` come from one pass of exact moments
(``moments``); ``KMeans`` seeds exact Lloyd passes with k-means++ restarts on a sample, and its
per-chunk work is the compiled kernels of ``lloyd``, which never import scikit-learn.
``sampled``, ``minibatch`` and ``density`` hold the methods that fit on a reproducible sample
(or stream the chunks) and label every row on the workers; ``registry`` builds any of them by
the name the configuration uses; ``tree`` keeps the top of a merge tree for a dendrogram.
Nothing here knows about catalogs, files or runs.
"""

from sonicatlas.lazy import exports

__getattr__, __dir__ = exports(__name__, {
    "StandardScaler": "scaler", "PCA": "pca", "KMeans": "kmeans",
    "MiniBatchKMeans": "minibatch", "GaussianMixture": "sampled", "Agglomerative": "sampled",
    "DBSCAN": "density", "HDBSCAN": "density", "MeanShift": "density",
    "make_method": "registry", "METHOD_NAMES": "registry", "tree_top": "tree",
})
__all__ = __dir__()
