"""The small tables of a run in a few words: what the report and the one-page summary print.

Each function takes a ``summary/`` table as written and returns plain text per cluster (or
per method), so the HTML report and the markdown summary say the same thing.
"""

from __future__ import annotations

import pandas as pd

from sonicatlas.contract import CLUSTER

#: A method whose silhouette is below this, or whose noise share is above NOISY, is flagged.
NEGATIVE_SILHOUETTE, NOISY = 0.0, 0.5


def iterations_said(n_iter: int, engine: str | None = "sonicatlas") -> str:
    """What KMeans' iteration count means, in words: the job's KMeans converges on samples
    first, so a handful of passes over every row is expected, not a sign of an early stop."""
    passes = f"{n_iter} full pass{'' if n_iter == 1 else 'es'} over every row"
    if engine in (None, "sonicatlas"):
        return f"converged on a sample, then {passes}"
    return f"seeded on a sample, then {passes}"


def top_categories(mix: pd.DataFrame, column: str, top: int = 3) -> dict[int, str]:
    """Per cluster, its ``top`` categories with their shares, and the share without one.

    Parameters
    ----------
    mix : pandas.DataFrame
        ``summary/genre_mix`` or ``summary/decade_mix``: cluster, ``column``, share and, when
        written, missing_share.
    column : str
        ``genre`` or ``decade``.
    top : int

    Returns
    -------
    dict
        ``{cluster: "pop 41%, rock 22%, latin 9% (no genre: 56%)"}``.
    """
    out = {}
    for cluster, rows in mix.sort_values([CLUSTER, "share"], ascending=[True, False]).groupby(
            CLUSTER, sort=True):
        text = ", ".join(f"{value} {share:.0%}" for value, share in
                         zip(rows[column].head(top), rows["share"].head(top), strict=True))
        missing = rows["missing_share"].iloc[0] if "missing_share" in rows else 0.0
        if missing > 0:
            text += f" (no {column}: {missing:.0%})"
        out[int(cluster)] = text
    return out


def top_artist_names(artists: pd.DataFrame, top: int = 3, artist: str = "artist_name"
                     ) -> dict[int, str]:
    """Per cluster, its ``top`` artists by tracks in it: ``{cluster: "A (12), B (9)"}``."""
    out = {}
    ordered = artists.sort_values([CLUSTER, "tracks", artist], ascending=[True, False, True])
    for cluster, rows in ordered.groupby(CLUSTER, sort=True):
        out[int(cluster)] = ", ".join(f"{name} ({int(n)})" for name, n in
                                      zip(rows[artist].head(top), rows["tracks"].head(top),
                                          strict=True))
    return out


def agreement_sentence(agreement: pd.DataFrame) -> str:
    """The clusters' agreement with the genres, and on how many tracks it rests."""
    row = agreement.iloc[0]
    text = (f"adjusted Rand {row['adjusted_rand']:.3f}, normalized mutual information "
            f"{row['normalized_mutual_info']:.3f}")
    if "coverage" in row and pd.notna(row["coverage"]):
        text += (f", over the {row['coverage']:.0%} of tracks that have a genre "
                 f"({row['tracks_with_genre']:,.0f})")
    return text


def method_warnings(comparison: pd.DataFrame) -> dict[str, str]:
    """Plain warnings for the methods of ``summary/method_comparison`` that degenerated:
    one cluster (or none), mostly noise, or a negative silhouette."""
    out = {}
    for row in comparison.to_dict("records"):
        said = []
        if row.get("n_clusters", 2) < 2:
            said.append(f"found {row.get('n_clusters', 0)} cluster: it did not split the "
                        "tracks (try other parameters)")
        if row.get("noise_share", 0.0) > NOISY:
            said.append(f"called {row['noise_share']:.0%} of the tracks noise")
        silhouette = row.get("silhouette_mean")
        if silhouette is not None and pd.notna(silhouette) and silhouette < NEGATIVE_SILHOUETTE:
            said.append(f"has a negative silhouette ({silhouette:.3f}): its tracks sit closer "
                        "to other clusters than to their own")
        if said:
            out[str(row["method"])] = "; ".join(said)
    return out


def comparison_rows(comparison: pd.DataFrame) -> list[list[str]]:
    """One row of text per method: name, clusters, noise, silhouette, agreement, warning."""
    warnings = method_warnings(comparison)
    rows = []
    for row in comparison.to_dict("records"):
        silhouette = row.get("silhouette_mean")
        rows.append([str(row["method"]), str(row.get("n_clusters", "?")),
                     f"{row.get('noise_share', 0.0):.0%}",
                     "–" if silhouette is None or pd.isna(silhouette) else f"{silhouette:.3f}",
                     f"{row.get('adjusted_rand_vs_kmeans', float('nan')):.3f}",
                     warnings.get(str(row["method"]), "")])
    return rows


COMPARISON_HEADER = ["method", "clusters", "noise", "silhouette", "adjusted Rand vs kmeans",
                     "warning"]
