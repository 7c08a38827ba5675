"""Several clustering methods on the same scaled matrix, scored side by side.

Every method labels every row (see :mod:`sonicatlas.estimators.sampled`). Scores use the rows a
method
did not call noise; agreement with KMeans is the exact adjusted Rand over all rows, noise
counted as a cluster of its own.
"""

from __future__ import annotations

import dask.array as da
import numpy as np
import pandas as pd

from sonicatlas.estimators.registry import make_method
from sonicatlas.evaluate import agreement, metrics


def fit_method(name: str, X: da.Array, k: int | None, params: dict, seed: int):
    """Fit one method; return it and its labels for every row (a persisted dask array)."""
    method = make_method(name, k, params, random_state=seed).fit(X)
    labels = method.predict(X).astype(np.int64).persist()
    return method, labels


def cluster_means(X: da.Array, labels: da.Array) -> np.ndarray:
    """Mean of each cluster's rows (noise, -1, left out): the centroids of any method."""
    keep = labels >= 0
    X, labels = X[keep], labels[keep]
    X.compute_chunk_sizes()
    labels.compute_chunk_sizes()
    n = int(labels.max().compute()) + 1
    return metrics.cluster_moments(X, labels, n).centers


def score_labels(X: da.Array, labels: da.Array, reference: da.Array | None,
                 silhouette_sample_size: int, silhouette_samples: int, seed: int) -> dict:
    """Cluster count, sizes, noise share, metrics on non-noise rows, ARI with ``reference``."""
    table = agreement.contingency(labels, reference if reference is not None else labels)
    sizes = table.sum(axis=1)
    noise = bool((labels.min() < 0).compute())
    counts = sizes[1:] if noise else sizes  # contingency shifts noise (-1) to row 0
    row = {"n_clusters": int((counts > 0).sum()), "cluster_sizes": counts.tolist(),
           "noise_share": float(sizes[0] / sizes.sum()) if noise else 0.0,
           "adjusted_rand_vs_kmeans": agreement.adjusted_rand(table)
           if reference is not None else 1.0}
    if row["n_clusters"] < 2:
        return row
    if noise:
        keep = labels >= 0
        X, labels = X[keep], labels[keep]
        X.compute_chunk_sizes()
        labels.compute_chunk_sizes()
    row.update(metrics.evaluate(X, labels, len(counts),
                                silhouette_sample_size=silhouette_sample_size,
                                silhouette_samples=silhouette_samples, random_state=seed))
    return row


def compare_methods(X: da.Array, names: list[str], k: int, params: dict[str, dict],
                    kmeans_labels: da.Array, silhouette_sample_size: int,
                    silhouette_samples: int, seed: int, echo=print, fitted_already=None
                    ) -> tuple[pd.DataFrame, dict[str, dict], dict]:
    """The ``summary/method_comparison`` table, per method how it was fitted, and the fitted
    methods.

    Returns
    -------
    table : pandas.DataFrame
        One row per method: method, params, n_clusters, cluster_sizes, noise_share, sse,
        silhouette_mean/std, davies_bouldin, calinski_harabasz, fit_seconds, fitted_on_sample,
        sample_size, adjusted_rand_vs_kmeans.
    fitted : dict
        ``{method: {"fitted_on_sample": bool, "sample_size": int, "params": {...}}}`` for the
        manifest.
    estimators : dict
        ``{method: fitted estimator}``, each labelling rows with ``predict`` (the job labels
        every track with each of them).

    ``fitted_already`` maps names to (method, labels) that need no refit (the run's KMeans).
    """
    rows, fitted, estimators = [], {}, {}
    for name in names:
        if name in (fitted_already or {}):
            method, labels = fitted_already[name]
        else:
            method, labels = fit_method(name, X, k, params.get(name, {}), seed)
        row = {"method": name, "params": _describe(method),
               **score_labels(X, labels, kmeans_labels, silhouette_sample_size,
                              silhouette_samples, seed),
               "fit_seconds": float(getattr(method, "fit_seconds_", np.nan)),  # nan: not kept
               "fitted_on_sample": bool(getattr(method, "fitted_on_sample_", False)),
               "sample_size": int(getattr(method, "sample_size_", X.shape[0]))}
        rows.append(row)
        estimators[name] = method
        fitted[name] = {"fitted_on_sample": row["fitted_on_sample"],
                        "sample_size": row["sample_size"], "params": row["params"]}
        echo(f"    {name:<14} {row['n_clusters']:>3} clusters, noise {row['noise_share']:.1%}, "
             f"silhouette {row.get('silhouette_mean', float('nan')):.3f}, "
             f"ARI vs kmeans {row['adjusted_rand_vs_kmeans']:.2f}, "
             f"fit {row['fit_seconds']:.1f} s")
        del labels  # release this method's labels on the workers before the next fit
    table = pd.DataFrame(rows)
    table["cluster_sizes"] = table["cluster_sizes"].map(lambda s: ", ".join(map(str, s)))
    return table, fitted, estimators


def method_agreement(labels: dict[str, da.Array]) -> pd.DataFrame:
    """``summary/method_agreement``: adjusted Rand and NMI of every pair of methods.

    Exact over all rows (:func:`sonicatlas.evaluate.agreement.contingency`), noise (-1)
    counted as a cluster of its own, as in ``adjusted_rand_vs_kmeans``.

    Parameters
    ----------
    labels : dict of str to dask.array.Array
        Each method's label of every row, all with the same chunks, in the table's order.

    Returns
    -------
    pandas.DataFrame
        One row per pair: method_a, method_b, adjusted_rand, normalized_mutual_info.
    """
    names = list(labels)
    rows = []
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            scores = agreement.agreement(agreement.contingency(labels[a], labels[b]))
            rows.append({"method_a": a, "method_b": b,
                         "adjusted_rand": scores["adjusted_rand"],
                         "normalized_mutual_info": scores["normalized_mutual_info"]})
    return pd.DataFrame(rows, columns=["method_a", "method_b", "adjusted_rand",
                                       "normalized_mutual_info"])


def _describe(method) -> str:
    """The method's settings that matter, as ``key=value`` text (eps and bandwidth included)."""
    learned = {key.rstrip("_"): getattr(method, key) for key in ("eps_", "bandwidth_", "radius_")
               if hasattr(method, key)}
    shown = {**{k: v for k, v in method.get_params().items() if v is not None}, **learned}
    return ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                     for k, v in sorted(shown.items()))
