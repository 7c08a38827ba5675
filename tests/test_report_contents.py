"""What the report and the one-page summary say: the final path, the manifest's figures, what
is in each cluster, how the compared methods did, and why k won."""

from __future__ import annotations

import html
import json
import shutil

import numpy as np
import pandas as pd
import pytest
from test_report import K, make_run, parse

from sonicatlas.runs.summary_page import run_summary_markdown
from sonicatlas.visual.report import write_report

WHY = "the gap over shuffled data comes within 5% of its largest (k=5) at k=4"


def _with_tables(run):
    summary = run / "summary"
    pd.DataFrame({"cluster": [0, 0, 1, 2, 3], "genre": ["pop", "hip hop", "rock", "jazz", "edm"],
                  "tracks": [1.5, 0.5, 3.0, 2.0, 1.0], "share": [0.75, 0.25, 1.0, 1.0, 1.0],
                  "missing_tracks": [2, 2, 0, 0, 1],
                  "missing_share": [0.5, 0.5, 0.0, 0.0, 0.5]}).to_parquet(summary / "genre_mix")
    pd.DataFrame({"cluster": np.arange(K), "decade": ["1990s", "2010s", "1980s", "2000s"],
                  "tracks": [3, 3, 2, 2], "share": [1.0] * 4, "missing_tracks": [0] * 4,
                  "missing_share": [0.0] * 4}).to_parquet(summary / "decade_mix")
    pd.DataFrame({"cluster": [0, 0, 1, 2, 3], "rank": [1, 2, 1, 1, 1],
                  "artist_name": ["Ann", "Bo", "Cy", "Di", "Ed"],
                  "tracks": [9, 4, 7, 6, 5]}).to_parquet(summary / "top_artists")
    pd.DataFrame([{"adjusted_rand": 0.022, "normalized_mutual_info": 0.05, "homogeneity": 0.1,
                   "completeness": 0.04, "tracks_with_genre": 440.0,
                   "tracks_without_genre": 560.0, "coverage": 0.44}]).to_parquet(
        summary / "genre_agreement")
    pd.DataFrame({"method": ["kmeans", "gmm", "dbscan"], "n_clusters": [4, 4, 1],
                  "noise_share": [0.0, 0.0, 0.02], "silhouette_mean": [0.2, -0.05, np.nan],
                  "adjusted_rand_vs_kmeans": [1.0, 0.6, 0.0]}).to_parquet(
        summary / "method_comparison")
    manifest = json.loads((run / "manifest.json").read_text())
    manifest["clustering"] = {"engine": "sonicatlas", "k_sweep": {"chosen": K, "why": WHY}}
    manifest["metrics"]["kmeans_iterations"] = 1
    (run / "manifest.json").write_text(json.dumps(manifest))
    return manifest


def test_report_and_summary_show_the_final_run_and_what_is_in_each_cluster(tmp_path):
    partial = make_run(tmp_path / ".mine.partial-1a2b")
    manifest = _with_tables(partial)
    final = tmp_path / "mine"
    page, text = parse(write_report(str(partial), manifest, location=str(final)))
    assert ".mine.partial" not in text
    assert "<title>sonicatlas report: mine</title>" in text
    assert str(final) in text
    total = sum(manifest["seconds"].values())
    assert f"{total:.1f} total" in text
    assert "converged on a sample, then 1 full pass over every row" in text
    assert "1 iterations" not in text

    assert "What is in each cluster" in page.headings and "Methods compared" in page.headings
    for said in ("pop 75%, hip hop 25% (no genre: 50%)", "1990s 100%", "Ann (9), Bo (4)",
                 "adjusted Rand 0.022", "over the 44% of tracks that have a genre",
                 "found 1 cluster", "negative silhouette (-0.050)", f"k={K} because {WHY}",
                 "differ from this catalog"):
        assert said in text, said

    shutil.move(partial, final)
    (final / "assignments").mkdir()  # the summary reads a run directory
    markdown = run_summary_markdown(final)
    for said in ("pop 75%, hip hop 25% (no genre: 50%)", "Ann (9), Bo (4)",
                 "adjusted Rand 0.022", "**dbscan** found 1 cluster", "**gmm** has a negative",
                 f"k was chosen because {WHY}", "then 1 full pass over every row"):
        assert said in markdown, said
    assert "1 iterations" not in markdown and "1 iteration." not in markdown


@pytest.mark.slow
def test_a_real_run_reports_its_final_path_and_the_manifest_as_written(tmp_path):
    from conftest import blob_tracks, run_job, write_catalog

    catalog = write_catalog(blob_tracks(1_500, groups=3, seed=5), tmp_path / "catalog")
    run_job(tmp_path / "run", f"input={catalog}", "k=3")
    manifest = json.loads((tmp_path / "run/manifest.json").read_text())
    text = (tmp_path / "run/report.html").read_text()
    assert "partial" not in text.split("<main>")[1].split("<h2>")[0]
    assert str((tmp_path / "run").resolve()) in text
    assert "<title>sonicatlas report: run</title>" in text
    assert f"{sum(manifest['seconds'].values()):.1f} total" in text
    assert html.escape(manifest["finished"]) in text
