"""Modeling: the steps both jobs share, from accepted rows to a fitted model.

``fit`` is the sequence itself: scale, PCA, cluster, and the model (:func:`fit_model`). ``engines``
says what does the fitting: the job's own estimators (``sonicatlas``, the default) or dask-ml's
(``dask-ml``). ``features`` scales the feature columns (held, or scaled again on each pass) and
gives the PCA of the scaled matrix; ``clustering`` fits KMeans at a given or chosen k, then the
configured algorithm and the methods to compare; ``model`` holds the fitted scaler, projection and
centres as plain data (:class:`ClusterModel`), scores partitions with them, and saves and loads them
as JSON and Parquet. ``projections`` fits ICA, UMAP or t-SNE on a sample stratified by cluster
(``stratified``) and places every track with them.
"""

from sonicatlas.lazy import exports

__getattr__, __dir__ = exports(__name__, {
    "fit_model": "fit", "FittedModel": "fit", "engine_named": "engines",
    "standardize": "features", "pca_of_scaled": "features", "fit_clusters": "clustering",
    "ClusterModel": "model", "project_tracks": "projections",
    "stratified_sample": "stratified",
})
__all__ = __dir__()
