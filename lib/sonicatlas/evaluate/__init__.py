"""Evaluation: how good a clustering is, and which k and method to keep.

``metrics`` computes the within-cluster cost, Calinski-Harabasz, Davies-Bouldin and a sampled
silhouette in a few passes; ``agreement`` compares two labelings (adjusted Rand, NMI, ...) from
a distributed contingency table; ``sweep`` fits every k of a range and applies the rule of
``k: auto``; ``compare`` fits several methods on one matrix. Uses the estimators; writes nothing.
"""

from sonicatlas.lazy import exports

__getattr__, __dir__ = exports(__name__, {
    "evaluate": "metrics", "agreement": "agreement", "adjusted_rand": "agreement",
    "sweep_k": "sweep", "compare_methods": "compare", "method_agreement": "compare",
})
__all__ = __dir__()
