"""Choosing k: fit every k in a range across the workers and score each.

For each k: the exact within-cluster cost, Calinski-Harabasz and Davies-Bouldin over every row
(:mod:`sonicatlas.evaluate.metrics`), the silhouette on random samples, the stability of the
clusters (mean adjusted Rand between refits on bootstrap samples with other seeds) and a null
reference (the same scores with every feature shuffled on its own, which destroys any
structure).

The rule is the gap statistic (Tibshirani, Walther and Hastie, 2001) with the shuffled data as
its reference: ``gap(k)`` is how much lower the log cost of KMeans is on a sample than on
``null_references`` shuffled copies of it (``gap_se``: its standard error). The gap's k is the
smallest k whose gap comes within ``gap_tolerance`` of the largest gap of the sweep (or within
that gap's standard error, whichever is looser): more clusters would add less than that share
of the structure that shuffling destroys. A k is *supported* when its clusters are stable
(mean adjusted Rand of the refits at least ``stability_threshold``) and its mean silhouette
beats the shuffled null by at least ``min_silhouette_gain``. The chosen k is the gap's k when
it is supported, else the supported k nearest to it (the smaller of two as near); when none
is, the gap's k, and the sweep says that the structure is weak. The elbow of the cost curve
(the point farthest below the chord between its ends, :mod:`sonicatlas.estimators.knee`) is
reported next to it.

References
----------
Tibshirani, R., Walther, G. and Hastie, T. (2001), "Estimating the number of clusters in a data
set via the gap statistic", J. R. Statist. Soc. B 63, 411-423.
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
    #: why that k won, in a sentence for the run's summary
    why: str = ""


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


def shuffled_copies(sample: np.ndarray, references: int, seed: int) -> list[np.ndarray]:
    """``references`` copies of ``sample`` with every feature shuffled on its own: the same
    marginals, no structure. The same copies serve every k, so that the gaps of neighbouring
    k differ by the data, not by the draw."""
    copies = []
    for reference in range(references):
        rng = np.random.default_rng([seed, 1, reference])
        copies.append(np.column_stack([rng.permutation(column) for column in sample.T]))
    return copies


def _null_scores(sample: np.ndarray, copies: list[np.ndarray], k: int, seed: int
                 ) -> dict[str, float]:
    """Scores of KMeans on the shuffled ``copies`` of ``sample`` and the gap statistic.

    The silhouette, Calinski-Harabasz and Davies-Bouldin are those of the first copy;
    ``gap`` is the mean log cost over the copies minus the log cost on ``sample``, and
    ``gap_se`` its standard error as Tibshirani et al. define it (``sd * sqrt(1 + 1 / B)``).
    """
    log_cost = np.log(SklearnKMeans(k, n_init=3, random_state=seed).fit(sample).inertia_)
    null_log_costs, scores = [], {}
    for shuffled in copies:
        fit = SklearnKMeans(k, n_init=3, random_state=seed).fit(shuffled)
        null_log_costs.append(np.log(fit.inertia_))
        if not scores:
            scores = {
                "null_silhouette": float(silhouette_score(shuffled, fit.labels_)),
                "null_calinski_harabasz": float(calinski_harabasz_score(shuffled, fit.labels_)),
                "null_davies_bouldin": float(davies_bouldin_score(shuffled, fit.labels_))}
    spread = float(np.std(null_log_costs)) * np.sqrt(1 + 1 / len(copies))
    return {**scores, "gap": float(np.mean(null_log_costs) - log_cost), "gap_se": spread}


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
    copies = shuffled_copies(null_sample, config.null_references, seed)
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
               **_null_scores(null_sample, copies, int(k), seed),
               "fit_seconds": fitted, "seconds": time.perf_counter() - start}
        rows.append(row)
        models[int(k)] = model
        echo(f"    k={k:<3} silhouette {row['silhouette_mean']:.3f} "
             f"(null {row['null_silhouette']:.3f}), stability {row['stability_ari']:.2f}, "
             f"gap {row['gap']:.3f}, {row['seconds']:.1f} s")
    table = pd.DataFrame(rows)
    chosen, supported, why = choose_k(table, config)
    elbow_k = int(table["k"].iloc[knee(table["sse"].to_numpy(), table["k"].to_numpy())])
    table["chosen"] = table["k"] == chosen
    table["elbow"] = table["k"] == elbow_k
    return SweepResult(table, chosen, elbow_k, models, supported, why)


def choose_k(table: pd.DataFrame, config: SweepConfig) -> tuple[int, bool, str]:
    """The rule (module docstring).

    Adds ``stable``, ``silhouette_gain``, ``supported`` and ``gap_reached`` (the gap is
    within the tolerance of the largest) to ``table``, sorted by k, and returns the chosen k,
    whether it is supported, and why it won in a sentence.
    """
    table.sort_values("k", inplace=True, ignore_index=True)
    table["stable"] = table["stability_ari"] >= config.stability_threshold
    table["silhouette_gain"] = table["silhouette_mean"] - table["null_silhouette"]
    table["supported"] = table["stable"] & (table["silhouette_gain"]
                                            >= config.min_silhouette_gain)
    best = table["gap"].idxmax()
    slack = max(table.loc[best, "gap_se"], config.gap_tolerance * table.loc[best, "gap"])
    table["gap_reached"] = table["gap"] >= table.loc[best, "gap"] - slack
    gap_k = int(table.loc[table["gap_reached"], "k"].iloc[0])
    best_k = int(table.loc[best, "k"])
    gap_said = (f"the gap over shuffled data is largest at k={gap_k}" if gap_k == best_k else
                f"the gap over shuffled data comes within "
                f"{slack / table.loc[best, 'gap']:.0%} of its largest (k={best_k}) at k={gap_k}")
    row = table.set_index("k")
    if row.loc[gap_k, "supported"]:
        return gap_k, True, (f"{gap_said}; its clusters reproduce (adjusted Rand "
                             f"{row.loc[gap_k, 'stability_ari']:.2f}) and its silhouette "
                             f"beats the null's by {row.loc[gap_k, 'silhouette_gain']:.3f}")
    candidates = table[table["supported"]]
    reason = ("do not reproduce" if not row.loc[gap_k, "stable"]
              else "are no clearer than on shuffled data")
    if len(candidates):
        # the supported k nearest the gap's k; of two as near, the smaller
        distance = (candidates["k"] - gap_k).abs() * 2 + (candidates["k"] > gap_k)
        chosen = int(candidates.loc[distance.idxmin(), "k"])
        return chosen, True, (f"{gap_said}, but its clusters {reason}; k={chosen} is the "
                              f"nearest k whose clusters reproduce and beat the null")
    return gap_k, False, (f"{gap_said}; no k has clusters that both reproduce and beat the "
                          f"shuffled null: the structure is weak")
