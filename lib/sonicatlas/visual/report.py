"""A run's self-contained HTML report: the run's numbers, the cluster map and the charts.

The page opens offline from a file: BokehJS is inlined, the map PNG is a data URI, and the
only other content is the charts' data. Optional summary tables add their sections when
present; a missing one leaves a note instead of a chart.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path

import numpy as np
import pandas as pd
from bokeh.embed import components
from bokeh.models import Widget
from bokeh.resources import Resources

from sonicatlas import storage
from sonicatlas.contract import FEATURES
from sonicatlas.summaries import digest
from sonicatlas.visual import charts, report_methods, report_tables
from sonicatlas.visual.axes import axis_labels, projection_title
from sonicatlas.visual.maps import cluster_colors

_CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
       color: #222; background: #fafafa; margin: 0; }
main { max-width: 1140px; margin: 0 auto; padding: 24px 20px 60px; }
h1 { font-size: 24px; margin: 0 0 4px; }
h2 { font-size: 18px; margin: 36px 0 8px; border-bottom: 1px solid #ddd; padding-bottom: 4px; }
h3 { font-size: 15px; margin: 18px 0 6px; }
.sub, .note { color: #666; }
.note { font-style: italic; margin: 6px 0; }
table.kv, table.tracks { border-collapse: collapse; background: #fff; }
table.kv th, table.kv td, table.tracks th, table.tracks td {
  border: 1px solid #e2e2e2; padding: 4px 10px; text-align: left; vertical-align: top; }
table.kv th { background: #f2f2f2; font-weight: 600; white-space: nowrap; }
table.tracks { width: 100%; font-size: 13px; }
table.tracks th { background: #f2f2f2; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.swatch { display: inline-block; width: 12px; height: 12px; border-radius: 2px;
          margin-right: 6px; vertical-align: -1px; }
img.map { max-width: 100%; border-radius: 4px; display: block; }
.chart { background: #fff; padding: 8px; border: 1px solid #e6e6e6; border-radius: 4px;
         overflow-x: auto; }
.tracks-grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(460px, 1fr));
               gap: 12px 20px; }
"""


def write_report(run_dir: str, manifest: dict | None = None, location: str | None = None,
                 storage_options: dict | None = None) -> Path | str:
    """Write ``report.html`` into a run directory of ``cluster-tracks``.

    Parameters
    ----------
    run_dir : str
        Run directory (local path or any fsspec URL) holding ``summary/cluster_profiles``,
        optionally the other ``summary/`` tables and ``maps/clusters.png``, and
        ``manifest.json`` unless ``manifest`` is given.
    manifest : dict, optional
        The run's manifest, for a run still being written (the job writes its manifest last).
    location : str, optional
        Where the run will be once complete, shown in the header and title; default
        ``run_dir`` (a run is written into a hidden directory and moved into place).
    storage_options : dict, optional
        fsspec options for ``run_dir``.

    Returns
    -------
    pathlib.Path or str
        The report, ``run_dir/report.html`` (a URL for a run not on this machine); it needs
        no network to open.
    """
    run = storage.Folder.at(run_dir, storage_options)
    if manifest is None:
        manifest = run.read_json("manifest.json")
    profiles = _read(run, "cluster_profiles")
    if profiles is None:
        raise FileNotFoundError(f"{run.url('summary/cluster_profiles')} is missing")
    profiles = profiles.sort_values("cluster").reset_index(drop=True)
    if "name" not in profiles:
        profiles["name"] = [f"cluster {c}" for c in profiles["cluster"]]
    profiles["name"] = profiles["name"].astype(str)
    features = [f for f in manifest.get("config", {}).get("features", FEATURES)
                if f"{f}_mean" in profiles]
    colors = cluster_colors(len(profiles))
    sample = _read(run, "track_sample")

    where = str(location or run.url())
    first, second = axis_labels(_read(run, "pca"))
    sections = [{"html": _header(where, manifest, profiles)},
                {"html": '<h2>Cluster map</h2><p class="sub">Every accepted track on the first '
                         "two principal components, coloured by cluster. Across: "
                         f"{html.escape(first)}; up: {html.escape(second)}.</p>"
                         + map_image(run)}]
    for name in manifest.get("config", {}).get("projections", ["pca"]):
        if name != "pca":  # the run's other projections, each drawn as the PCA map is
            title = projection_title(name)
            sections.append({"html": f"<h2>Cluster map, {title}</h2>" + map_image(
                run, f"clusters_{name}.png", f"Tracks by cluster on {title} 1 x {title} 2",
                f"cluster-map-{name}")})
    models = []

    def add(heading: str, model, note: str = "", missing: str = "") -> None:
        text = f"<h2>{html.escape(heading)}</h2>"
        if model is None:
            sections.append({"html": text + f'<p class="note">{html.escape(missing)}</p>'})
            return
        if note:
            text += f'<p class="sub">{html.escape(note)}</p>'
        models.append(model)
        sections.append({"html": text, "root": model.name})

    add("Cluster sizes", charts.cluster_sizes(profiles, colors))
    z = _z_scores(profiles, features)
    radar, limit = charts.radars(z, profiles, features, colors)
    add("Sonic fingerprints", radar,
        f"Each spoke is a feature's cluster mean as a z-score against the whole catalog: the "
        f"dashed ring is the catalog mean, rings are 1 standard deviation apart, the centre "
        f"is -{limit:g}.")
    add("Feature z-scores by cluster", charts.zscore_heatmap(z, profiles, features))
    add("Feature distributions by cluster", *_boxes(sample, profiles, features, colors))
    add("Feature correlation", *_correlation(run, sample, features))
    sections.append({"html": report_tables.cluster_contents(profiles, colors, {
        name: _read(run, name)
        for name in ("genre_mix", "decade_mix", "top_artists", "genre_agreement")})})
    sweep = _read(run, "k_sweep")
    if sweep is not None:
        why = manifest.get("clustering", {}).get("k_sweep", {}).get("why")
        add("Choosing k", charts.k_sweep(sweep),
            (f"k={manifest.get('k')} because {why}. " if why else "")
            + "Each measure against k. Orange dashed line: the k chosen; grey dotted line: "
            "the elbow; grey dashed curve: the same measure on structureless (null) data; "
            "band: the silhouette's standard deviation; hollow points: k whose clusters were "
            "not stable under resampling.",
            missing="Skipped: the k sweep has none of the measures to plot.")
    silhouettes = _read(run, "silhouette")
    if silhouettes is not None:
        add("Silhouette by cluster", *report_methods.silhouette_section(silhouettes, profiles),
            missing="Skipped: no sampled track has a silhouette (fewer than two clusters).")
    clustering = manifest.get("clustering", {})
    methods = report_methods.method_profiles(
        {name.removeprefix("cluster_profiles_"): run.read_table(f"summary/{name}")
         for name in run.listdir("summary") if name.startswith("cluster_profiles_")},
        order=clustering.get("methods", {}))
    algorithm = clustering.get("algorithm", "kmeans")
    shown = {n: t for n, t in methods.items() if n != algorithm}  # the run's own: first tab
    if shown:
        add("Clusters by method", *report_methods.method_tabs(
            f"{algorithm} (the run's clusters)", profiles, shown, features, silhouettes))
    if "dendrogram" in clustering:
        add("Dendrogram", *report_methods.dendrogram_section(
            _read(run, "dendrogram"), _read(run, "dendrogram_leaves"),
            clustering["dendrogram"],
            profiles if algorithm == "agglomerative" else methods.get("agglomerative",
                                                                      profiles)))
    sections.append({"html": report_tables.method_comparison(_read(run, "method_comparison"))})
    sections.append({"html": _representatives(_read(run, "representative_tracks"), profiles,
                                               colors)})

    name = where.rstrip("/").rsplit("/", 1)[-1]
    return written(run, page(f"sonicatlas report: {name}", sections, models))


def written(run: storage.Folder, text: str) -> Path | str:
    """Write ``report.html`` into ``run``; return it as a Path here, a URL elsewhere."""
    out = run.write_text("report.html", text)
    return Path(out) if storage.is_local(run.fs) else out


def page(title: str, sections: list[dict], models: list) -> str:
    """The whole page: BokehJS inlined, then the sections, each chart in its place."""
    script, divs = components(models)
    placed = dict(zip((m.name for m in models), divs, strict=True))
    # Only BokehJS's own bundles, from Resources.js_raw: Resources.js_files would add the
    # __javascript__ URLs of every model class imported, used or not, and Panel (imported by
    # HoloViews) registers one that points at a server path.
    needed = ["bokeh"]
    if any(isinstance(o, Widget) for m in models for o in m.references()):
        needed += ["bokeh-widgets", "bokeh-tables"]
    resources = Resources(mode="inline", components=needed, log_level="warn")
    head = "".join(f"<style>{css}</style>" for css in resources.css_raw)
    head += "".join(f"<script>{js}</script>" for js in resources.js_raw)
    body = []
    for section in sections:
        body.append(section["html"])
        if section.get("root"):
            body.append(f'<div class="chart" data-chart="{section["root"]}">'
                        f'{placed[section["root"]]}</div>')
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>{html.escape(title)}</title><style>{_CSS}</style>{head}</head>\n"
            f'<body><main>{"".join(body)}</main>\n{script}</body></html>\n')


def _read(run: storage.Folder, name: str) -> pd.DataFrame | None:
    return run.read_table(f"summary/{name}")


def _z_scores(profiles: pd.DataFrame, features: list[str]) -> pd.DataFrame:
    """Cluster mean z-scores: the ``f_z`` columns, else derived from the sizes, means, stds."""
    if all(f"{f}_z" in profiles for f in features):
        return pd.DataFrame({f: profiles[f"{f}_z"].to_numpy(dtype=float) for f in features})
    n = profiles["size"].to_numpy(dtype=float)
    total = max(n.sum(), 1.0)
    z = {}
    for f in features:
        mean = profiles[f"{f}_mean"].to_numpy(dtype=float)
        std = profiles[f"{f}_std"].to_numpy(dtype=float)
        used = n > 0
        grand = np.sum(n[used] * mean[used]) / total
        # Total variance = within-cluster + between-cluster (the law of total variance).
        within = np.nansum((n[used] - 1) * std[used] ** 2)
        between = np.sum(n[used] * (mean[used] - grand) ** 2)
        spread = np.sqrt((within + between) / max(total - 1, 1.0))
        z[f] = (mean - grand) / spread if spread > 0 else np.zeros_like(mean)
    return pd.DataFrame(z)


def _boxes(sample, profiles, features, colors):
    if sample is not None and len(sample) and set(features) <= set(sample.columns):
        return (charts.boxes_from_sample(sample, profiles, features, colors),
                f"From a sample of {len(sample):,} tracks; boxes span the middle half of each "
                "cluster, whiskers 1.5 IQR, dots beyond them are outliers.")
    if all(f"{f}_{q}" in profiles for f in features for q in ("q25", "median", "q75")):
        return (charts.boxes_from_quartiles(profiles, features, colors),
                "Boxes span the middle half of each cluster (25th to 75th percentile), the "
                "mark is the median; no track sample was stored, so no whiskers.")
    return None, "", "Skipped: the run stored neither a track sample nor feature quartiles."


def _correlation(run, sample, features):
    table = _read(run, "feature_correlation")
    if table is not None:
        matrix = table.set_index("feature").loc[:, [c for c in table.columns if c != "feature"]]
        return (charts.correlation(matrix, "Pearson correlation of the features, all tracks"),
                "")
    if sample is not None and len(sample) > 2 and set(features) <= set(sample.columns):
        return (charts.correlation(sample[features].corr(),
                                   "Pearson correlation of the features, track sample"),
                f"Computed from the sample of {len(sample):,} tracks.")
    return None, "", "Skipped: the run stored neither a correlation matrix nor a track sample."


def map_image(run: storage.Folder, name: str = "clusters.png",
              alt: str = "Tracks by cluster on PC1 x PC2", element_id: str = "cluster-map"
              ) -> str:
    """A map of the run as an inline ``<img>`` (a data URI: the page stays offline)."""
    if not run.exists(f"maps/{name}"):
        return f'<p class="note">Skipped: the run has no maps/{html.escape(name)}.</p>'
    data = base64.b64encode(run.read_bytes(f"maps/{name}")).decode("ascii")
    return (f'<img class="map" id="{element_id}" alt="{html.escape(alt)}" '
            f'src="data:image/png;base64,{data}">')


def _swatch(color: str) -> str:
    return f'<span class="swatch" style="background:{color}"></span>'


def kv_table(rows: list[tuple[str, str]]) -> str:
    # Values are pre-escaped HTML; keys are ours.
    body = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows)
    return f'<table class="kv">{body}</table>'


def _header(where: str, manifest: dict, profiles: pd.DataFrame) -> str:
    e = html.escape
    source = manifest.get("input", {})
    rows = manifest.get("rows", {})
    metrics = manifest.get("metrics", {})
    reasons = rows.get("reject_reasons", {})
    top = sorted(reasons.items(), key=lambda item: -item[1])[:5]
    rejected = f"{rows.get('rows_rejected', 0):,}"
    if top:
        rejected += " — " + ", ".join(f"{e(str(r))}: {n:,}" for r, n in top)
        if len(reasons) > len(top):
            rejected += f", and {len(reasons) - len(top)} more reasons"
    ratio = metrics.get("pca_explained_variance_ratio", [])
    pca = ", ".join(f"PC{i + 1} {r:.1%}" for i, r in enumerate(ratio[:2]))
    if len(ratio) >= 2:
        pca += f" (together {ratio[0] + ratio[1]:.1%})"
    seconds = manifest.get("seconds", {})
    stages = ", ".join(f"{e(s)} {t:.1f}" for s, t in seconds.items())
    versions = ", ".join(f"{e(p)} {e(str(v))}" for p, v in manifest.get("versions", {}).items())
    cost = metrics.get("inertia")
    table = kv_table([
        ("Input", f"{e(str(source.get('url', '?')))} ({source.get('files', '?')} files, "
                  f"{source.get('rows', 0):,} rows, fingerprint "
                  f"<code>{e(str(source.get('fingerprint', '?')))}</code>)"),
        ("Rows read", f"{rows.get('rows_read', 0):,}"),
        *([("Rows merged", f"{rows['rows_merged']:,} repeated listings of a track (same id "
                           "and features), their genres pooled")] if rows.get("rows_merged")
          else []),
        ("Rows accepted", f"{rows.get('rows_accepted', 0):,}"),
        ("Rows rejected", rejected),
        ("Clusters", f"k = {manifest.get('k', len(profiles))}, named by how they differ from "
                     "this catalog: " + ", ".join(
            _swatch(c) + e(n) for c, n in zip(cluster_colors(len(profiles)), profiles["name"],
                                              strict=True))),
        ("k-means cost", "?" if cost is None else
         f"{cost:,.1f} (inertia), " + e(digest.iterations_said(
             metrics.get("kmeans_iterations", 0),
             manifest.get("clustering", {}).get("engine")))),
        ("PCA variance explained", pca or "?"),
        ("Seconds per stage", f"{sum(seconds.values()):.1f} total: {stages}"),
        ("Versions", versions),
    ])
    finished = e(str(manifest.get("finished", "")))
    return (f"<h1>sonicatlas: {e(manifest.get('job', 'run'))} report</h1>"
            f'<p class="sub">{e(str(where))} · finished {finished}</p>{table}')


def _representatives(tracks: pd.DataFrame | None, profiles: pd.DataFrame,
                     colors: list[str]) -> str:
    heading = "<h2>Representative tracks</h2>"
    if tracks is None or not len(tracks):
        return heading + '<p class="note">Skipped: the run stored no representative tracks.</p>'
    e = html.escape
    # The id goes in a tooltip: it is long, unreadable, and would crowd the names out.
    columns = [c for c in ("track_name", "artist_name", "genre") if c in tracks] or ["track_id"]
    parts = [heading, '<p class="sub">The tracks nearest each cluster centre (distance in '
             'standardised feature units; hover a track for its id).</p>',
             '<div class="tracks-grid">']
    head = "".join(f"<th>{e(c.replace('_', ' '))}</th>" for c in ["#", *columns, "distance"])
    for (_, row), color in zip(profiles.iterrows(), colors, strict=True):
        mine = tracks[tracks["cluster"] == row["cluster"]].sort_values("rank")
        if not len(mine):
            continue
        body = "".join(
            f'<tr title="{e(str(t.get("track_id", "")))}">'
            f'<td class="num">{int(t["rank"])}</td>'
            + "".join(f"<td>{e('' if pd.isna(t[c]) else str(t[c]))}</td>" for c in columns)
            + f'<td class="num">{t["distance"]:.3f}</td></tr>'
            for _, t in mine.iterrows())
        parts.append(f"<div><h3>{_swatch(color)}{e(row['name'])}</h3>"
                     f'<table class="tracks"><tr>{head}</tr>{body}</table></div>')
    return "".join(parts) + "</div>"
