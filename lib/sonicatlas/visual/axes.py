"""What a map's axes mean: for PCA, each component's share of the variance and the features
that load most on it, with their signs, from ``summary/pca``; for the other projections,
their names."""

from __future__ import annotations

import pandas as pd


def axis_labels(pca_table: pd.DataFrame | None, top: int = 3) -> tuple[str, str]:
    """``"PC1 (23%): +energy +loudness -acousticness"``: each map axis, its share of the
    variance and the features it loads on most, with the loading's sign.

    Parameters
    ----------
    pca_table : pandas.DataFrame or None
        ``summary/pca``: a row per component with ``explained_variance_ratio`` and a column of
        loadings per feature. None gives the bare ``PC1``, ``PC2``.
    top : int
        How many features name each axis.

    Returns
    -------
    tuple of str
        The labels of the first two components.
    """
    if pca_table is None:
        return ("PC1", "PC2")
    labels = []
    for i in range(2):
        row = pca_table.iloc[i]
        loadings = row.drop(["component", "explained_variance", "explained_variance_ratio"],
                            errors="ignore").astype(float)
        strongest = loadings.abs().sort_values(ascending=False).index[:top]
        said = " ".join(f"{'+' if loadings[f] >= 0 else '-'}{f}" for f in strongest)
        labels.append(f"PC{i + 1} ({row['explained_variance_ratio']:.0%}): {said}")
    return labels[0], labels[1]


#: How each projection other than PCA names its map and axes.
PROJECTION_TITLES = {"ica": "ICA", "umap": "UMAP", "tsne": "t-SNE"}


def projection_title(name: str) -> str:
    """``t-SNE`` for ``tsne``: a projection's name as its map shows it."""
    return PROJECTION_TITLES.get(name, name.upper())
