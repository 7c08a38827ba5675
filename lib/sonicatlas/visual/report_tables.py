"""The report's text tables: what is in each cluster (genres, decades, artists) and how the
compared methods did, from the run's ``summary/`` tables (:mod:`sonicatlas.summaries.digest`)."""

from __future__ import annotations

import html

import pandas as pd

from sonicatlas.summaries import digest


def _table(header: list[str], rows: list[list[str]], numeric: set[int] = frozenset()) -> str:
    e = html.escape
    head = "".join(f"<th>{e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(
        f'<td class="num">{cell}</td>' if i in numeric else f"<td>{cell}</td>"
        for i, cell in enumerate(row)) + "</tr>" for row in rows)
    return f'<table class="tracks"><tr>{head}</tr>{body}</table>'


def cluster_contents(profiles: pd.DataFrame, colors: list[str], tables: dict) -> str:
    """Section: per cluster its size, top genres, decades and artists (those it has), and
    the clusters' agreement with the genres; empty when the run has none of these tables."""
    e = html.escape
    columns = {}
    if tables.get("genre_mix") is not None:
        columns["genres"] = digest.top_categories(tables["genre_mix"], "genre")
    if tables.get("decade_mix") is not None:
        columns["decades"] = digest.top_categories(tables["decade_mix"], "decade")
    if tables.get("top_artists") is not None:
        columns["top artists"] = digest.top_artist_names(tables["top_artists"])
    if not columns:
        return ""
    rows = []
    for row, color in zip(profiles.itertuples(index=False), colors, strict=True):
        cluster = int(row.cluster)
        rows.append([f'<span class="swatch" style="background:{color}"></span>{e(row.name)}',
                     f"{int(row.size):,}",
                     *(e(values.get(cluster, "")) for values in columns.values())])
    text = ('<h2>What is in each cluster</h2><p class="sub">Shares within each cluster; a '
            "track with several genres counts a fraction towards each, and tracks without a "
            "genre or year are counted apart. Names compare each cluster with this catalog.</p>")
    agreement = tables.get("genre_agreement")
    if agreement is not None and len(agreement):
        text += (f'<p class="sub">Clusters against genres: '
                 f"{e(digest.agreement_sentence(agreement))}.</p>")
    return text + _table(["cluster", "tracks", *columns], rows, numeric={1})


def method_comparison(comparison: pd.DataFrame | None) -> str:
    """Section: each compared method's clusters, noise, silhouette, agreement with KMeans,
    and a plain warning where it degenerated; empty without ``summary/method_comparison``."""
    if comparison is None or not len(comparison):
        return ""
    e = html.escape
    rows = [[e(cell) for cell in row] for row in digest.comparison_rows(comparison)]
    warnings = digest.method_warnings(comparison)
    text = ('<h2>Methods compared</h2><p class="sub">Every method on the same scaled '
            "features; the adjusted Rand index says how much each agrees with KMeans.</p>")
    for method, warning in warnings.items():
        text += f'<p class="note"><strong>{e(method)}</strong> {e(warning)}.</p>'
    return text + _table(digest.COMPARISON_HEADER, rows, numeric={1, 2, 3, 4})
