"""A run's one-page markdown summary: input, rows, clusters with their distinctive features,
seconds per stage, and where the files are."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pandas as pd

from sonicatlas import storage
from sonicatlas.contract import CLUSTER
from sonicatlas.runs.export import local_out
from sonicatlas.runs.provenance import SUMMARY_KIND, is_run_summary
from sonicatlas.runs.reading import read_manifest, read_profiles, run_folder
from sonicatlas.summaries import digest


def _features(profiles: pd.DataFrame, manifest: dict) -> list[str]:
    listed = manifest.get("config", {}).get("features") or [
        c[: -len("_mean")] for c in profiles.columns if c.endswith("_mean")]
    return [f for f in listed if f"{f}_mean" in profiles and f"{f}_std" in profiles]


def distinctive_features(profiles: pd.DataFrame, features: list[str]) -> pd.DataFrame:
    """How far each cluster's mean is from the catalog's, in catalog standard deviations.

    Parameters
    ----------
    profiles : pandas.DataFrame
        ``summary/cluster_profiles``: ``size`` and ``<feature>_mean`` / ``<feature>_std``.
    features : list of str

    Returns
    -------
    pandas.DataFrame
        One row per cluster, one column per feature; NaN for empty clusters. The catalog's
        mean and standard deviation are pooled from the per-cluster ones, weighted by size.
    """
    n = profiles["size"].to_numpy(dtype=float)
    means = profiles[[f"{f}_mean" for f in features]].to_numpy(dtype=float)
    stds = np.nan_to_num(profiles[[f"{f}_std" for f in features]].to_numpy(dtype=float))
    seen = n > 0
    total = n[seen].sum()
    overall = (n[seen, None] * means[seen]).sum(axis=0) / total
    # Total sum of squares = within clusters + between clusters.
    squares = ((n[seen, None] - 1) * stds[seen] ** 2
               + n[seen, None] * (means[seen] - overall) ** 2).sum(axis=0)
    sd = np.sqrt(squares / max(total - 1, 1))
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(sd > 0, (means - overall) / sd, 0.0)
    z[~seen] = np.nan
    return pd.DataFrame(z, columns=features, index=profiles[CLUSTER].to_numpy())


def _number(value: float) -> str:
    if not math.isfinite(value):
        return "–"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.1f}" if abs(value) >= 10 else f"{value:.2f}"


def _plural(n: object, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _table(header: list[str], align: str, rows: list[list[object]]) -> list[str]:
    rule = {"l": "---", "r": "---:"}
    return ["| " + " | ".join(header) + " |",
            "|" + "|".join(rule[a] for a in align) + "|",
            *("| " + " | ".join(_cell(c) for c in row) + " |" for row in rows)]


def _summary_table(run: storage.Folder, name: str) -> pd.DataFrame | None:
    return run.read_table(f"summary/{name}")


def _contents(run: storage.Folder, profiles: pd.DataFrame) -> list[str]:
    """Genres, decades and artists per cluster, the genre agreement, the methods compared."""
    lines = []
    columns = {}
    for name, column, title in (("genre_mix", "genre", "genres"),
                                ("decade_mix", "decade", "decades")):
        table = _summary_table(run, name)
        if table is not None:
            columns[title] = digest.top_categories(table, column)
    artists = _summary_table(run, "top_artists")
    if artists is not None:
        columns["top artists"] = digest.top_artist_names(artists)
    if columns:
        lines += ["", "## What is in each cluster", "",
                  *_table(["id", "name", *columns], "ll" + "l" * len(columns),
                          [[row.cluster, row.name, *(v.get(int(row.cluster), "")
                                                     for v in columns.values())]
                           for row in profiles.itertuples(index=False)])]
        agreement = _summary_table(run, "genre_agreement")
        if agreement is not None and len(agreement):
            lines += ["", f"Clusters against genres: {digest.agreement_sentence(agreement)}."]
    comparison = _summary_table(run, "method_comparison")
    if comparison is not None and len(comparison):
        lines += ["", "## Methods compared", ""]
        lines += [f"- **{m}** {w}." for m, w in digest.method_warnings(comparison).items()]
        lines += ["", *_table(digest.COMPARISON_HEADER, "lrrrrl",
                              digest.comparison_rows(comparison))]
    return lines


def run_summary_markdown(run_dir: str | os.PathLike, top: int = 3,
                         storage_options: dict | None = None) -> str:
    """A one-page markdown summary of a run.

    Parameters
    ----------
    run_dir : str or path-like
        A run directory written by ``sonicatlas run cluster-tracks``: a local path or any
        fsspec URL.
    top : int
        Distinctive features listed per cluster.
    storage_options : dict, optional
        fsspec options for ``run_dir``.

    Returns
    -------
    str
        Input, rows read, accepted and rejected (with reasons), k and the KMeans cost, a
        table of the clusters (id, name, size, share, and the features whose cluster mean
        stands out most from the catalog mean), seconds per stage, and where the files are.
    """
    run = run_folder(run_dir, storage_options)
    manifest = read_manifest(run)
    profiles = read_profiles(run)
    source, rows = manifest.get("input", {}), manifest["rows"]
    metrics = manifest.get("metrics", {})
    read = rows["rows_read"]

    def share(n: int) -> str:
        return f"{n / read:.1%}" if read else "–"

    lines = [f"# Run {run.name}", "",
             f"{manifest.get('job', 'cluster-tracks')}, finished {manifest.get('finished', '?')}"
             f"; `{run.url()}`", "", "## Input", "",
             f"- Source: `{source.get('url', '?')}` ({_plural(source.get('files', '?'), 'file')}, "
             f"{source.get('rows', read):,} rows, fingerprint `{source.get('fingerprint', '?')}`)",
             f"- Rows read: {read:,}",
             f"- Accepted: {rows['rows_accepted']:,} ({share(rows['rows_accepted'])})",
             f"- Rejected: {rows['rows_rejected']:,} ({share(rows['rows_rejected'])})"]
    if rows.get("rows_merged"):
        lines.append(f"- Merged: {rows['rows_merged']:,} repeated listings of a track (same id "
                     "and features; their genres pooled)")
    reasons = rows.get("reject_reasons") or {}
    if reasons:
        lines += ["", *_table(["reason", "rows", "share of read"], "lrr",
                              [[r, f"{n:,}", share(n)] for r, n in reasons.items()])]

    k = manifest.get("k", len(profiles))
    clustering = manifest.get("clustering", {})
    passes = digest.iterations_said(metrics.get("kmeans_iterations", 0), clustering.get("engine"))
    lines += ["", "## Clusters", "", f"k = {k}, KMeans cost (inertia, sum of squared distances "
              f"in z-score units) {metrics.get('inertia', float('nan')):,.1f}, {passes}."]
    why = clustering.get("k_sweep", {}).get("why")
    if why:
        lines[-1] += f" k was chosen because {why}."
    ratio = metrics.get("pca_explained_variance_ratio") or []
    if len(ratio) >= 2:
        lines[-1] += (f" The map's axes PC1 and PC2 explain {ratio[0]:.1%} and {ratio[1]:.1%} "
                      "of the variance.")
    features = _features(profiles, manifest)
    z = distinctive_features(profiles, features) if features else None
    table = []
    for row in profiles.itertuples(index=False):
        cluster = getattr(row, CLUSTER)
        standout = ""
        if z is not None and int(row.size) > 0:
            ranked = z.loc[cluster].abs().sort_values(ascending=False, kind="stable")
            standout = ", ".join(
                f"{f} {_number(getattr(row, f'{f}_mean'))} ({z.loc[cluster, f]:+.1f} sd)"
                for f in ranked.index[:top])
        table.append([cluster, row.name, f"{int(row.size):,}", f"{row.share:.1%}", standout])
    lines += ["", *_table(["id", "name", "size", "share", "most distinctive (mean, vs catalog)"],
                          "rlrrl", table),
              "", "Distinctive features: the cluster's mean minus the catalog's, in catalog "
              "standard deviations; names compare each cluster with this catalog."]
    lines += _contents(run, profiles)

    seconds = manifest.get("seconds") or {}
    if seconds:
        lines += ["", "## Time", "",
                  *_table(["stage", "seconds"], "lr",
                          [[s, f"{v:.1f}"] for s, v in seconds.items()]
                          + [["**total**", f"**{sum(seconds.values()):.1f}**"]])]

    lines += ["", "## Files", "", f"In `{run.url()}`:", ""]
    described = {
        "manifest.json": "config, versions, input fingerprint, row counts, metrics, timings",
        "assignments/": "one row per accepted track: cluster, distance, pc1, pc2, metadata",
        "model/": "model.json (scaler, PCA, centroids, names) and centroids.parquet",
        "maps/clusters.png": "every accepted track on PC1 x PC2, colored by cluster",
        "performance.html": "Dask performance report",
    }
    for name, what in described.items():
        if run.exists(name.rstrip("/")):
            lines.append(f"- `{name}`: {what}")
    tables = run.listdir("summary")
    if tables:
        lines.append("- `summary/`: " + ", ".join(f"`{t}`" for t in tables))
    lines += ["", "Read a table with pandas: "
              f"`pd.read_parquet(\"{run.url('assignments')}\")`.", ""]
    return "\n".join(lines)


def write_run_summary(run_dir: str | os.PathLike, out: str | os.PathLike, *,
                      overwrite: bool = False, storage_options: dict | None = None) -> Path:
    """Write :func:`run_summary_markdown` to ``out``, atomically.

    Parameters
    ----------
    run_dir : str or path-like
    out : str or path-like
        Markdown file to create on this machine; missing parent directories are made.
    overwrite : bool
        Replace an existing ``out``, if it is a run summary
        (:func:`~.provenance.is_run_summary`).
    storage_options : dict, optional
        fsspec options for ``run_dir``.

    Returns
    -------
    pathlib.Path
        ``out``.

    Raises
    ------
    OutputExistsError
        ``out`` exists and ``overwrite`` is false, or it is not a run summary.
    """
    out = local_out(out)
    fs, path = storage.resolve(out)
    storage.check_target(fs, path, str(out), overwrite, is_run_summary, SUMMARY_KIND)
    text = run_summary_markdown(run_dir, storage_options=storage_options)
    with storage.replacing(fs, path) as partial:
        Path(partial).write_text(text, encoding="utf-8")
    return out
