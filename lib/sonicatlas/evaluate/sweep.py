"""Choosing k: fit every k in a range across the workers and score each.

For each k: the exact within-cluster cost, Calinski-Harabasz and Davies-Bouldin over every row
(:mod:`sonicatlas.evaluate.metrics`), the silhouette on random samples, the stability of the
clusters (mean adjusted Rand between refits on bootstrap samples with other seeds) and a null
reference (the same scores with every feature shuffled on its own, which destroys any
structure).

The rule: a k is *supported* when its clusters are stable (mean adjusted Rand of the refits
at least ``stability_threshold``) and its mean silhouette beats the shuffled null by at least
``min_silhouette_gain``. The chosen k is the supported one with the highest mean silhouette;
when no k is supported, the one whose silhouette gains most over the null, and the sweep says
that the structure is weak. The elbow of the cost curve (the point farthest below the chord
between its ends, :mod:`sonicatlas.estimators.knee`) is reported next to it.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.cluster import KMeans as SklearnKMeans
from sklearn.metrics import (
    adjusted_rand_score,
    calinski_harabasz_score,
    davies_bouldin_score,
    silhouette_score,
)

from sonicatlas.config import KMeansConfig, SweepConfig
from sonicatlas.estimators.arrays import sample_rows
from sonicatlas.estimators.kmeans import KMeans
from sonicatlas.estimators.knee import knee
from sonicatlas.evaluate import metrics

log = logging.getLogger(__name__)


@dataclass
class SweepResult:
    """The ``summary/k_sweep`` table, the chosen k and elbow, and the fitted models."""

    table: pd.DataFrame
    k: int
    elbow_k: int
    models: dict[int, KMeans]
    #: whether the chosen k is stable and clearly above the null
    supported: bool = True


def _stability(sample: np.ndarray, k: int, runs: int, seed: int) -> float:
    """Mean pairwise adjusted Rand of KMeans refits on bootstrap samples, labels on ``sample``."""
    rng = np.random.default_rng([seed, k])
    labelings = []
    for run in range(runs):
        boot = sample[rng.integers(0, len(sample), len(sample))]
        fit = SklearnKMeans(k, n_init=3, random_state=seed + 1 + run).fit(boot)
        labelings.append(fit.predict(sample))
    scores = [adjusted_rand_score(a, b) for i, a in enumerate(labelings)
              for b in labelings[i + 1:]]
    return float(np.mean(scores)) if scores else 1.0


def _null_scores(sample: np.ndarray, k: int, seed: int) -> dict[str, float]:
    rng = np.random.default_rng([seed, k, 1])
    shuffled = np.column_stack([rng.permutation(column) for column in sample.T])
    labels = SklearnKMeans(k, n_init=3, random_state=seed).fit_predict(shuffled)
    return {"null_silhouette": float(silhouette_score(shuffled, labels)),
            "null_calinski_harabasz": float(calinski_harabasz_score(shuffled, labels)),
            "null_davies_bouldin": float(davies_bouldin_score(shuffled, labels))}


def sweep_k(X, config: SweepConfig, kmeans: KMeansConfig, seed: int, echo=print
            ) -> SweepResult:
    """Fit and score KMeans for every k in ``config.k_min..k_max`` on the scaled matrix.

    Parameters
    ----------
    X : dask array
        The scaled feature matrix, persisted (it is read several times per k).
    config : SweepConfig
        Range, sample sizes and the stability threshold.
    kmeans : KMeansConfig
        How each k is fitted.
    seed : int
    echo : callable
        One line per k as it finishes.
    """
    ks = np.arange(config.k_min, min(config.k_max, X.shape[0] - 1) + 1)
    sample = sample_rows(X, config.stability_sample_size, seed)
    null_sample = sample[:config.null_sample_size]
    rows, models = [], {}
    for k in ks:
        start = time.perf_counter()
        model = KMeans(int(k), n_init=kmeans.n_init, init_sample_size=kmeans.init_sample_size,
                       max_iter=kmeans.max_iter, tol=kmeans.tol, random_state=seed).fit(X)
        fitted = time.perf_counter() - start
        scores = metrics.evaluate(X, model.predict(X), int(k),
                                  silhouette_sample_size=config.silhouette_sample_size,
                                  silhouette_samples=config.silhouette_samples,
                                  random_state=seed)
        row = {"k": int(k), **scores, "kmeans_cost": model.inertia_,
               "kmeans_iterations": model.n_iter_,
               "stability_ari": _stability(sample, int(k), config.stability_runs, seed),
               **_null_scores(null_sample, int(k), seed),
               "fit_seconds": fitted, "seconds": time.perf_counter() - start}
        rows.append(row)
        models[int(k)] = model
        echo(f"    k={k:<3} silhouette {row['silhouette_mean']:.3f} "
             f"(null {row['null_silhouette']:.3f}), stability {row['stability_ari']:.2f}, "
             f"{row['seconds']:.1f} s")
    table = pd.DataFrame(rows)
    chosen, supported = choose_k(table, config)
    if not supported:
        echo("    no k is both stable and clearly above the shuffled null: the structure is "
             f"weak; k={chosen} gains most over the null")
    elbow_k = int(table["k"].iloc[knee(table["sse"].to_numpy(), table["k"].to_numpy())])
    table["chosen"] = table["k"] == chosen
    table["elbow"] = table["k"] == elbow_k
    return SweepResult(table, chosen, elbow_k, models, supported)


def choose_k(table: pd.DataFrame, config: SweepConfig) -> tuple[int, bool]:
    """The rule (module docstring): adds ``stable``, ``silhouette_gain`` and ``supported`` to
    ``table`` and returns the chosen k and whether it is supported."""
    table["stable"] = table["stability_ari"] >= config.stability_threshold
    table["silhouette_gain"] = table["silhouette_mean"] - table["null_silhouette"]
    table["supported"] = table["stable"] & (table["silhouette_gain"]
                                            >= config.min_silhouette_gain)
    if table["supported"].any():
        supported = table[table["supported"]]
        return int(supported.loc[supported["silhouette_mean"].idxmax(), "k"]), True
    return int(table.loc[table["silhouette_gain"].idxmax(), "k"]), False
