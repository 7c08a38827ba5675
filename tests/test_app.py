"""The explorer, driven as a user drives it: the real CLI serving, Debian's Chromium browsing."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import blob_tracks, run_job, write_catalog
from sonicatlas.contract import FEATURES

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).parent / "artifacts"
pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def app_run(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("app")
    catalog = write_catalog(blob_tracks(3_000, groups=4, seed=3), root / "catalog")
    run_job(root / "run", f"input={catalog}", "k=4")
    return root / "run"


@pytest.fixture(scope="module")
def served(app_run):
    """``sonicatlas serve RUN`` in its own process; yields its URL, then stops it."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "sonicatlas.cli", "serve", str(app_run), "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})
    url, lines = None, []
    deadline = time.monotonic() + 60
    while url is None and time.monotonic() < deadline:
        line = process.stdout.readline()
        lines.append(line)
        found = re.search(r"at (http://127\.0\.0\.1:\d+/)", line)
        url = found.group(1) if found else None
        if process.poll() is not None:
            break
    assert url == f"http://127.0.0.1:{port}/", "".join(lines)
    yield url, process
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=20)


@pytest.fixture(scope="module")
def page(served):
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright not installed")
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not installed (apt-get install chromium)")
    url, _ = served
    outside, errors = [], []
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update"])
        context = browser.new_context(viewport={"width": 1400, "height": 1000},
                                      accept_downloads=True)
        view = context.new_page()
        view.on("console", lambda m: m.type == "error" and errors.append(m.text))
        view.on("pageerror", lambda e: errors.append(str(e)))
        view.on("request", lambda r: r.url.startswith(
            (url, url.replace("http", "ws"), "data:", "blob:")) or outside.append(r.url))
        view.goto(url)
        view.wait_for_selector("text=tracks", timeout=60_000)
        view.wait_for_timeout(1500)
        view.outside, view.errors = outside, errors
        yield view
        ARTIFACTS.mkdir(exist_ok=True)
        view.screenshot(path=str(ARTIFACTS / "explorer.png"), full_page=True)
        browser.close()


def shown_count(page) -> int:
    text = page.locator("h3").filter(has_text="tracks").first.inner_text()
    return int(re.search(r"([\d,]+) tracks", text).group(1).replace(",", ""))


def wait_for_count(page, expected: int, seconds: float = 20) -> None:
    """Wait until the page's count reads ``expected`` (Panel renders into shadow roots, which
    Playwright's locators see and ``document.body.innerText`` does not)."""
    deadline = time.monotonic() + seconds
    while shown_count(page) != expected and time.monotonic() < deadline:
        page.wait_for_timeout(200)


def test_the_page_loads_offline_without_errors(page, app_run):
    assert page.errors == [] and page.outside == []
    assert shown_count(page) == len(pd.read_parquet(app_run / "assignments"))


def test_typing_an_artist_narrows_the_counts_to_pandas_filter(page, app_run):
    tracks = pd.read_parquet(app_run / "assignments")
    box = page.get_by_placeholder("part of a name")
    box.fill("artist 1")
    box.press("Enter")
    expected = int(tracks["artist_name"].str.lower().str.contains("artist 1").sum())
    wait_for_count(page, expected)
    assert shown_count(page) == expected < len(tracks)
    box.fill("")
    box.press("Enter")
    wait_for_count(page, len(tracks))


def test_moving_the_popularity_slider_counts_what_pandas_counts(page, app_run):
    tracks = pd.read_parquet(app_run / "assignments")
    handle = page.locator(".noUi-handle-lower").first
    handle.focus()
    for _ in range(30):
        handle.press("ArrowRight")
    label = page.get_by_text(re.compile(r"Popularity: \d+ \.\. \d+")).inner_text()
    low, high = map(int, re.findall(r"\d+", label)[-2:])
    assert low == tracks["popularity"].min() + 30
    expected = int(tracks["popularity"].between(low, high).sum())
    wait_for_count(page, expected)
    assert shown_count(page) == expected


def test_the_filtered_csv_download_has_the_pandas_filter_rows(page, app_run):
    tracks = pd.read_parquet(app_run / "assignments")
    page.locator(".bk-tab", has_text="Tracks").first.click()
    label = page.get_by_text(re.compile(r"Popularity: \d+ \.\. \d+")).inner_text()
    low, high = map(int, re.findall(r"\d+", label)[-2:])
    with page.expect_download(timeout=30_000) as download:
        page.get_by_text("Download the selection (CSV)").click()
    got = pd.read_csv(download.value.path())
    expected = tracks[tracks["popularity"].between(low, high)]
    assert sorted(got["track_id"]) == sorted(expected["track_id"])
    assert np.array_equal(got.set_index("track_id").loc[expected["track_id"], "cluster"],
                          expected["cluster"])


def test_zooming_the_map_re_aggregates_it(page):
    page.locator(".bk-tab", has_text="Map").first.click()
    canvas = page.locator(".bk-Canvas").first
    canvas.wait_for(timeout=30_000)
    page.wait_for_timeout(2000)
    before = canvas.screenshot()
    box = canvas.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.wheel(0, -600)
    page.wait_for_timeout(3000)
    after = canvas.screenshot()
    assert before != after
    assert page.errors == []


#: Per Bokeh figure on the page: its plot frame's size and how many canvas pixels are not
#: white or transparent.
FIGURES_DRAWN = """() => {
  const out = [];
  const ink = (canvas) => {
    const d = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
    let n = 0;
    for (let i = 0; i < d.length; i += 4)
      if (d[i + 3] > 0 && (d[i] < 240 || d[i + 1] < 240 || d[i + 2] < 240)) n++;
    return n;
  };
  const walk = (view) => {
    if (view.model.type === 'Figure' && view.el.isConnected)
      out.push({title: view.model.title ? view.model.title.text : '',
                width: view.frame.bbox.width, height: view.frame.bbox.height,
                ink: ink(view.canvas_view.primary.canvas)});
    for (const child of view.child_views || []) walk(child);
  };
  for (const view of Object.values(Bokeh.index)) walk(view);
  return out;
}"""


def test_every_cluster_chart_draws(page, app_run):
    k = len(pd.read_parquet(app_run / "summary" / "cluster_profiles"))
    # sizes, a radar per cluster, the z-scores, a box plot per feature, the correlations
    expected = 1 + k + 1 + len(FEATURES) + 1
    page.locator(".bk-tab", has_text="Clusters").first.click()
    page.wait_for_function(f"({FIGURES_DRAWN})().length >= {expected}", timeout=30_000)
    page.wait_for_timeout(2000)
    figures = page.evaluate(FIGURES_DRAWN)
    assert len(figures) == expected, figures
    blank = [f for f in figures if f["width"] <= 0 or f["height"] <= 0 or f["ink"] < 500]
    assert blank == [] and page.errors == []


def test_serving_a_path_that_is_not_a_run_is_one_line_and_exit_2(tmp_path):
    done = subprocess.run([sys.executable, "-m", "sonicatlas.cli", "serve", str(tmp_path)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "not a run directory" in done.stderr


def test_a_port_in_use_is_named_and_exit_2(app_run):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "sonicatlas.cli", "serve", str(app_run), "--port", str(port)],
            capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and f"127.0.0.1:{port}" in done.stderr


def _standardised(run: Path) -> tuple[pd.DataFrame, np.ndarray, dict]:
    """The run's query vectors (pandas), row for row with its assignments, and its model."""
    import json

    model = json.loads((run / "model" / "model.json").read_text())
    query = pd.read_parquet(run / "query")
    tracks = pd.read_parquet(run / "assignments").merge(query, on="track_id",
                                                        suffixes=("", "_z"))
    z = np.column_stack([tracks[f"{f}_z" if f"{f}_z" in tracks else f].to_numpy(np.float64)
                         for f in model["features"]])
    return tracks, z, model


def _cosine(z: np.ndarray, target: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(z, axis=1) * np.linalg.norm(target)
    return np.divide(z @ target, norms, out=np.zeros(len(z)), where=norms > 0)


def test_search_picks_a_song_and_lists_its_nearest_as_numpy_does(page, app_run):
    page.locator(".bk-tab", has_text="Search").first.click()
    box = page.get_by_placeholder("a song or an artist, e.g. beyonce")
    box.fill("Song 42")  # case-insensitive; the exact match ranks first and is picked
    box.press("Enter")
    page.get_by_text("Most like").first.wait_for(timeout=30_000)
    page.wait_for_timeout(1000)
    listed = page.locator("table").filter(has_text="similarity").first.inner_text()
    tracks, z, _ = _standardised(app_run)
    query = int(np.flatnonzero(tracks["track_name"].to_numpy() == "song 42")[0])
    similarity = _cosine(z, z[query])
    similarity[query] = -np.inf
    order = np.lexsort((tracks["track_id"].to_numpy(), -similarity))[:10]
    expected = tracks["track_id"].to_numpy()[order].tolist()
    at = [listed.find(track) for track in expected]
    assert min(at) >= 0 and at == sorted(at)  # all ten, in this order
    assert listed.count("trk") == 10
    page.get_by_role("button", name="Show the artist's profile").click()
    page.get_by_text("Most similar artists").first.wait_for(timeout=30_000)
    artist = tracks["artist_name"].iat[query]
    assert page.get_by_text(f"Artist: {artist}").count() >= 1 and page.errors == []


def playlist_by_hand(run: Path) -> list[str]:
    """The default playlist of cluster 0, walked by hand over a numpy brute force: cosine to
    the centre at least 0.8, best first (ties by id), at most 2 a artist, 30 tracks."""
    tracks, z, model = _standardised(run)
    similarity = _cosine(z, np.asarray(model["centers"][0]))
    ok = (tracks["cluster"].to_numpy() == 0) & (similarity >= 0.8)
    order = np.flatnonzero(ok)[np.lexsort((tracks["track_id"].to_numpy()[ok],
                                           -similarity[ok]))]
    expected, per_artist = [], {}
    for i in order:
        artist = tracks["artist_name"].iat[i]
        if per_artist.get(artist, 0) < 2 and len(expected) < 30:
            per_artist[artist] = per_artist.get(artist, 0) + 1
            expected.append(tracks["track_id"].iat[i])
    return expected


def test_a_playlist_keeps_its_rules_and_downloads_as_the_brute_force_walk(page, app_run):
    page.locator(".bk-tab", has_text="Playlist").first.click()
    page.get_by_role("button", name="Generate the playlist").click()
    page.get_by_text("qualified").first.wait_for(timeout=30_000)
    page.locator(".bk-tab", has_text="Export").first.click()
    with page.expect_download(timeout=30_000) as download:
        page.get_by_text("Download the playlist (CSV)").click()
    got = pd.read_csv(download.value.path())
    expected = playlist_by_hand(app_run)
    assert got["track_id"].tolist() == expected and len(expected) > 0
    assert got["artist_name"].value_counts().max() <= 2
    assert (got["similarity"] >= 0.8).all() and got["similarity"].is_monotonic_decreasing


def test_the_run_summary_downloads_from_the_export_tab(page, app_run):
    page.locator(".bk-tab", has_text="Export").first.click()
    with page.expect_download(timeout=30_000) as download:
        page.get_by_text("Download the run summary (Markdown)").click()
    text = Path(download.value.path()).read_text()
    names = pd.read_parquet(app_run / "summary" / "cluster_profiles")["name"]
    assert text.startswith("# Run") and all(name in text for name in names)



def test_a_playlist_without_seeds_is_a_message_in_the_page(page):
    page.locator(".bk-tab", has_text="Playlist").first.click()
    page.get_by_role("button", name="seed songs").click()
    page.get_by_role("button", name="Generate the playlist").click()
    page.get_by_text("give either a cluster or seed tracks").first.wait_for(timeout=30_000)
    assert page.errors == []
    page.get_by_role("button", name="a cluster").click()  # as the tests before left it


# last: it stops the server the tests above share
def test_sigterm_stops_the_server_cleanly(served):
    _, process = served
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=20) == 0
