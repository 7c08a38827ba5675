"""The explorer serving a run held on a Dask cluster (`sonicatlas serve RUN --scheduler`),
driven in Debian's Chromium and checked against pandas and numpy on the run's files."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pandas as pd
import pytest
from test_app import (
    CHROMIUM,
    FIGURES_DRAWN,
    _cosine,
    _standardised,
    free_port,
    playlist_by_hand,
    shown_count,
    wait_for_count,
)

from conftest import blob_tracks, run_job, write_catalog

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("cluster_app")
    catalog = write_catalog(blob_tracks(3_000, groups=4, seed=7), root / "catalog", parts=4)
    run_job(root / "run", f"input={catalog}", "k=4")
    return root / "run"


@pytest.fixture(scope="module")
def scheduler():
    """A real LocalCluster (worker processes) on 127.0.0.1, as a remote scheduler is used."""
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address="127.0.0.1:0") as cluster:
        yield cluster.scheduler_address


@pytest.fixture(scope="module")
def served(cluster_run, scheduler):
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "sonicatlas.cli", "serve", str(cluster_run), "--port", str(port),
         "--scheduler", scheduler],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})
    url, lines = None, []
    deadline = time.monotonic() + 120
    while url is None and time.monotonic() < deadline:
        line = process.stdout.readline()
        lines.append(line)
        found = re.search(r"at (http://127\.0\.0\.1:\d+/)", line)
        url = found.group(1) if found else None
        if process.poll() is not None:
            break
    assert url == f"http://127.0.0.1:{port}/", "".join(lines)
    # the server's log is read all along, so that a full pipe never blocks it
    reader = threading.Thread(target=lambda: lines.extend(process.stdout), daemon=True)
    reader.start()
    yield url
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0
    reader.join(timeout=10)
    assert "Traceback" not in "".join(lines), "".join(lines)


@pytest.fixture(scope="module")
def page(served):
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright not installed")
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not installed (apt-get install chromium)")
    errors = []
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"])
        context = browser.new_context(viewport={"width": 1400, "height": 1000},
                                      accept_downloads=True)
        view = context.new_page()
        view.on("pageerror", lambda e: errors.append(str(e)))
        view.goto(served)
        view.wait_for_selector("text=tracks", timeout=90_000)
        view.wait_for_timeout(1500)
        view.errors = errors
        yield view
        browser.close()


def test_the_counts_after_a_filter_are_a_pandas_filter_of_the_run(page, cluster_run):
    tracks = pd.read_parquet(cluster_run / "assignments")
    assert shown_count(page) == len(tracks)
    box = page.get_by_placeholder("part of a name")
    box.fill("artist 2")
    box.press("Enter")
    expected = int(tracks["artist_name"].str.lower().str.contains("artist 2").sum())
    wait_for_count(page, expected, seconds=60)
    assert shown_count(page) == expected < len(tracks)
    assert page.errors == []


def test_the_overview_and_every_cluster_chart_draw_from_the_cluster(page, cluster_run):
    assert page.get_by_text("failed:").count() == 0  # no view's error in the Overview
    k = len(pd.read_parquet(cluster_run / "summary" / "cluster_profiles"))
    expected = 1 + k + 1 + 10 + 1  # sizes, radars, z-scores, a box per feature, correlation
    page.locator(".bk-tab", has_text="Clusters").first.click()
    page.wait_for_function(f"({FIGURES_DRAWN})().length >= {expected}", timeout=60_000)
    page.wait_for_timeout(2000)
    figures = page.evaluate(FIGURES_DRAWN)
    assert len(figures) == expected
    assert [f for f in figures if f["width"] <= 0 or f["ink"] < 500] == []
    assert page.get_by_text("failed:").count() == 0 and page.errors == []


def test_the_filtered_csv_download_is_the_pandas_filter(page, cluster_run):
    tracks = pd.read_parquet(cluster_run / "assignments")
    page.locator(".bk-tab", has_text="Tracks").first.click()
    with page.expect_download(timeout=60_000) as download:
        page.get_by_text("Download the selection (CSV)").click()
    got = pd.read_csv(download.value.path())
    expected = tracks[tracks["artist_name"].str.lower().str.contains("artist 2")]
    assert sorted(got["track_id"]) == sorted(expected["track_id"])
    assert np.array_equal(got.set_index("track_id").loc[expected["track_id"], "cluster"],
                          expected["cluster"])


def test_the_map_draws_the_selection_and_re_aggregates_on_zoom(page):
    page.locator(".bk-tab", has_text="Map").first.click()
    canvas = page.locator(".bk-Canvas").first
    canvas.wait_for(timeout=60_000)
    page.wait_for_timeout(4000)
    before = canvas.screenshot()
    lit = page.evaluate("""() => {
      for (const view of Object.values(Bokeh.index)) {
        const found = [];
        const walk = (v) => { if (v.model.type === 'Figure') found.push(v);
                              for (const c of v.child_views || []) walk(c); };
        walk(view);
        for (const figure of found) {
          const c = figure.canvas_view.primary.canvas;
          const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
          let n = 0;  // pixels neither the dark background nor white
          for (let i = 0; i < d.length; i += 4)
            if (d[i + 3] > 0 && Math.max(d[i], d[i + 1], d[i + 2]) > 60 &&
                Math.min(d[i], d[i + 1], d[i + 2]) < 200) n++;
          if (n > 0) return n;
        }
      }
      return 0;
    }""")
    assert lit > 100
    box = canvas.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.wheel(0, -600)
    page.wait_for_timeout(5000)
    assert canvas.screenshot() != before and page.errors == []


def test_search_and_similar_songs_answer_as_numpy_does(page, cluster_run):
    page.locator(".bk-tab", has_text="Search").first.click()
    box = page.get_by_placeholder("a song or an artist, e.g. beyonce")
    box.fill("Song 42")
    box.press("Enter")
    page.get_by_text("Most like").first.wait_for(timeout=60_000)
    page.wait_for_timeout(1000)
    listed = page.locator("table").filter(has_text="similarity").first.inner_text()
    tracks, z, _ = _standardised(cluster_run)
    query = int(np.flatnonzero(tracks["track_name"].to_numpy() == "song 42")[0])
    similarity = _cosine(z, z[query])
    similarity[query] = -np.inf
    order = np.lexsort((tracks["track_id"].to_numpy(), -similarity))[:10]
    expected = tracks["track_id"].to_numpy()[order].tolist()
    at = [listed.find(track) for track in expected]
    assert min(at) >= 0 and at == sorted(at)
    assert listed.count("trk") == 10 and page.errors == []


def test_a_cluster_playlist_downloads_as_the_brute_force_walk(page, cluster_run):
    page.locator(".bk-tab", has_text="Playlist").first.click()
    page.get_by_role("button", name="Generate the playlist").click()
    page.get_by_text("qualified").first.wait_for(timeout=60_000)
    page.locator(".bk-tab", has_text="Export").first.click()
    with page.expect_download(timeout=60_000) as download:
        page.get_by_text("Download the playlist (CSV)").click()
    got = pd.read_csv(download.value.path())
    expected = playlist_by_hand(cluster_run)
    assert got["track_id"].tolist() == expected and len(expected) > 0


def test_views_over_many_partitions_equal_pandas(cluster_run):
    """More partitions than one combine takes, so the partials merge in a tree."""
    import dask.dataframe as dd

    from sonicatlas.app import views
    from sonicatlas.app.access import SPLIT_EVERY, ClusterTracks
    from sonicatlas.app.data import RunData, read_run
    from sonicatlas.app.filters import Filters
    from sonicatlas.app.map import HEIGHT, WIDTH, aggregate

    local = read_run(str(cluster_run))
    frame = dd.from_pandas(local.tracks, npartitions=3 * SPLIT_EVERY).persist()
    data = RunData(local.run, frame, local.names, local.manifest, local.profiles,
                   local.rejects, local.features, None, local.methods,
                   access=ClusterTracks(frame, len(local.tracks)))
    filters = Filters(frame, data.features, local.genres, data.access)
    filters.popularity = (40, 100)
    tracks = pd.read_parquet(cluster_run / "assignments")
    chosen = tracks[tracks["popularity"].between(40, 100)]
    assert data.access.count(filters.selection) == len(chosen)
    profiles, _ = views.selection_profiles(data, filters.selection)
    assert profiles["size"].tolist() == chosen["cluster"].value_counts().sort_index().tolist()
    table = views.track_table(data, filters.selection).value
    assert table["popularity"].tolist() == sorted(chosen["popularity"], reverse=True)[:200]
    x, y = (-4.0, 4.0), (-4.0, 4.0)
    image = aggregate(data, filters.selection, "density", x, y)
    expected, _, _ = np.histogram2d(chosen["pc2"], chosen["pc1"], bins=(HEIGHT, WIDTH),
                                    range=(y, x))
    assert np.nansum(image.data["tracks"]) == pytest.approx(expected.sum(), abs=2)


def test_a_scheduler_that_does_not_answer_is_one_line_and_exit_2(cluster_run):
    done = subprocess.run(
        [sys.executable, "-m", "sonicatlas.cli", "serve", str(cluster_run), "--port",
         str(free_port()), "--scheduler", f"tcp://127.0.0.1:{free_port()}"],
        capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "scheduler" in done.stderr
