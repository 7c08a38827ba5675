"""report.html for a segment-listeners run: numbers, map, sizes, what sets segments apart,
and when each segment listens. Built from the same page and charts as the tracks report."""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np
import pandas as pd
from bokeh.models import ColumnDataSource
from bokeh.plotting import figure

from sonicatlas import storage
from sonicatlas.visual import charts
from sonicatlas.visual.maps import cluster_colors
from sonicatlas.visual.report import kv_table, map_image, page, written


def write_segment_report(run_dir: str, storage_options: dict | None = None) -> Path | str:
    """Write ``report.html`` into a run directory of ``segment-listeners`` (a local path or
    any fsspec URL); return it (a URL for a run not on this machine)."""
    run = storage.Folder.at(run_dir, storage_options)
    manifest = run.read_json("manifest.json")
    profiles = run.read_table("summary/segment_profiles").sort_values("cluster")
    profiles = profiles.reset_index(drop=True)
    model = run.read_json("model/model.json")
    colors = cluster_colors(len(profiles))
    # The centroids are already z-scores of the clustered columns against all users.
    z = pd.DataFrame(model["centers"], columns=model["features"])
    shown = [c for c in z.columns if not c.startswith(("hour_", "weekday_"))]

    sections = [{"html": _header(manifest, profiles)},
                {"html": "<h2>Segment map</h2><p class=\"sub\">Every listener on the first two "
                         "principal components, coloured by segment.</p>"
                         + map_image(run, "segments.png", "Listeners by segment")}]
    models = [charts.cluster_sizes(profiles, colors),
              charts.zscore_heatmap(z[shown], profiles, shown), _hours(profiles, colors)]
    for heading, model_ in zip(("Segment sizes", "What sets each segment apart (z-score)",
                                "When each segment listens"), models, strict=True):
        sections.append({"html": f"<h2>{html.escape(heading)}</h2>", "root": model_.name})
    return written(run, page(f"sonicatlas segments: {run.name}", sections, models))


def _header(manifest: dict, profiles: pd.DataFrame) -> str:
    rows = manifest["rows"]
    reasons = ", ".join(f"{html.escape(r)}: {n:,}"
                        for r, n in list(rows["reject_reasons"].items())[:5]) or "none"
    entries = [("Listens", html.escape(str(manifest["input"]["listens"]))),
               ("Tracks run", html.escape(str(manifest["input"]["tracks_run"]))),
               ("Listens read", f"{rows['rows_read']:,}"),
               ("Listens accepted", f"{rows['rows_accepted']:,}"),
               ("Listens rejected", f"{rows['rows_rejected']:,} ({reasons})"),
               ("Listeners", f"{int(profiles['size'].sum()):,} in {len(profiles)} segments")]
    agreement = manifest.get("taste_agreement")
    if agreement:
        entries.append(("Planted tastes recovered", "adjusted Rand "
                        f"{agreement['adjusted_rand']:.3f}, NMI "
                        f"{agreement['normalized_mutual_info']:.3f}"))
    entries.append(("Seconds", ", ".join(f"{k} {v:.1f}" for k, v in manifest["seconds"].items())))
    return "<h1>sonicatlas: segment-listeners report</h1>" + kv_table(entries)


def _hours(profiles: pd.DataFrame, colors: list[str]):
    """Share of each segment's plays per UTC hour, one line per segment."""
    plot = figure(width=1100, height=360, title="Share of plays by hour (UTC)",
                  x_axis_label="hour", y_axis_label="share of plays", toolbar_location=None)
    hours = np.arange(24)
    for (_, row), color in zip(profiles.iterrows(), colors, strict=True):
        shares = [row.get(f"hour_{h}_mean", np.nan) for h in hours]
        source = ColumnDataSource({"hour": hours, "share": shares})
        plot.line("hour", "share", source=source, color=color, line_width=2,
                  legend_label=str(row["name"]))
    plot.legend.location = "top_left"
    plot.name = "hours"
    return plot
