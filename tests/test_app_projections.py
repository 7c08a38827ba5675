"""The explorer's map on a projection other than PCA, in Chromium: choosing ICA redraws the map
on ``ica1`` x ``ica2``, and a click picks the track nearest in that projection (numpy brute
force on the run's assignments read with pandas)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_app import free_port

from conftest import blob_tracks, run_job, write_catalog

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = pytest.mark.slow

#: The map figure shown: its x and y ranges, axis labels, and where its plot frame lies on the
#: page (client pixels), with the frame's data-to-pixel scales.
MAP_FIGURE = """() => {
  const out = [];
  const walk = (view) => {
    if (view.model.type === 'Figure' && view.el.isConnected) {
      const rect = view.canvas_view.el.getBoundingClientRect();
      out.push({x: [view.model.x_range.start, view.model.x_range.end],
                y: [view.model.y_range.start, view.model.y_range.end],
                xlabel: view.model.below[0].axis_label, ylabel: view.model.left[0].axis_label,
                left: rect.left, top: rect.top});
      window.mapView = view;
    }
    for (const child of view.child_views || []) walk(child);
  };
  for (const view of Object.values(Bokeh.index)) walk(view);
  return out;
}"""
#: Client pixel of a data point (x, y) on the map, and the data point of a client pixel.
TO_PIXEL = """([x, y]) => {
  const v = window.mapView, rect = v.canvas_view.el.getBoundingClientRect();
  return [rect.left + v.frame.x_scale.compute(x), rect.top + v.frame.y_scale.compute(y)];
}"""
TO_DATA = """([px, py]) => {
  const v = window.mapView, rect = v.canvas_view.el.getBoundingClientRect();
  return [v.frame.x_scale.invert(px - rect.left), v.frame.y_scale.invert(py - rect.top)];
}"""


@pytest.fixture(scope="module")
def ica_run(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("app_projections")
    catalog = write_catalog(blob_tracks(3_000, groups=4, seed=3), root / "catalog")
    run_job(root / "run", f"input={catalog}", "k=4", "projections=[pca, ica]")
    return root / "run"


@pytest.fixture(scope="module")
def page(ica_run):
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright not installed")
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not installed (apt-get install chromium)")
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "sonicatlas.cli", "serve", str(ica_run), "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        lines, deadline = [], time.monotonic() + 60
        while time.monotonic() < deadline and process.poll() is None:
            lines.append(process.stdout.readline())
            if f"http://127.0.0.1:{port}/" in lines[-1]:
                break
        assert f"http://127.0.0.1:{port}/" in lines[-1], "".join(lines)
        errors = []
        with sync_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=str(CHROMIUM),
                args=["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                      "--disable-background-networking", "--disable-component-update"])
            view = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
            view.on("console", lambda m: m.type == "error" and errors.append(m.text))
            view.on("pageerror", lambda e: errors.append(str(e)))
            view.goto(f"http://127.0.0.1:{port}/")
            view.wait_for_selector("text=tracks", timeout=60_000)
            view.errors = errors
            yield view
            browser.close()
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=20)


def shown_map(page, xlabel_start: str) -> dict:
    """The map figure, once its x axis label starts with ``xlabel_start``."""
    page.wait_for_function(
        f"({MAP_FIGURE})().some(f => f.xlabel.startsWith({xlabel_start!r}))", timeout=30_000)
    page.wait_for_timeout(1500)  # the first aggregate reaches the browser
    figures = page.evaluate(MAP_FIGURE)
    assert len(figures) == 1, figures
    return figures[0]


def test_choosing_ica_redraws_the_map_on_the_ica_columns(page, ica_run):
    tracks = pd.read_parquet(ica_run / "assignments")
    page.locator(".bk-tab", has_text="Map").first.click()
    pca = shown_map(page, "PC1")
    canvas = page.locator(".bk-Canvas").first
    before = canvas.screenshot()
    choice = page.locator("select").filter(has=page.locator("option", has_text="ICA")).first
    assert [o.strip() for o in choice.locator("option").all_inner_texts()] == ["PCA", "ICA"]
    choice.select_option(label="ICA")
    ica = shown_map(page, "ICA")
    assert (ica["xlabel"], ica["ylabel"]) == ("ICA 1", "ICA 2")
    for axis, column in (("x", "ica1"), ("y", "ica2")):
        low, high = ica[axis]
        assert low <= tracks[column].min() and tracks[column].max() <= high, (axis, ica)
        # the ICA view, not PCA's: it spans the ICA values plus at most the view's padding
        span = tracks[column].max() - tracks[column].min()
        assert high - low <= 1.2 * span
    assert pca["x"] != ica["x"]
    assert canvas.screenshot() != before
    assert page.errors == []


def test_a_click_picks_the_track_nearest_in_ica(page, ica_run):
    tracks = pd.read_parquet(ica_run / "assignments")
    points = tracks[["ica1", "ica2"]].to_numpy(np.float64)
    figure = shown_map(page, "ICA")
    # aim at the most isolated track inside the view, so a pixel's rounding cannot change
    # which track is nearest
    inside = ((points[:, 0] > figure["x"][0]) & (points[:, 0] < figure["x"][1])
              & (points[:, 1] > figure["y"][0]) & (points[:, 1] < figure["y"][1]))
    gaps = np.sqrt(((points[:, None, :] - points[None, :, :]) ** 2).sum(axis=2))
    np.fill_diagonal(gaps, np.inf)
    aim = int(np.argmax(np.where(inside, gaps.min(axis=1), -1)))
    px, py = (round(v) for v in page.evaluate(TO_PIXEL, points[aim].tolist()))
    page.mouse.click(px, py)
    clicked = np.asarray(page.evaluate(TO_DATA, [px, py]))
    expected = tracks["track_id"].iloc[int(np.argmin(((points - clicked) ** 2).sum(axis=1)))]
    shown = page.locator("p", has_text=re.compile(r"at \(-?\d")).first
    shown.wait_for(timeout=30_000)
    text = shown.inner_text()
    found = re.search(r"\((\S+)\)\s*at \((-?[\d.]+), (-?[\d.]+)\)", text)
    assert found, text
    assert found.group(1) == expected
    row = tracks.set_index("track_id").loc[expected]
    assert (float(found.group(2)), float(found.group(3))) == \
        (round(float(row["ica1"]), 2), round(float(row["ica2"]), 2))
    assert page.errors == []


@pytest.fixture(scope="module")
def client():
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address="127.0.0.1:0") as cluster, Client(cluster) as connected:
        yield connected


@pytest.mark.parametrize("mode", ["local", "cluster"])
def test_the_run_keeps_its_ica_columns_and_the_nearest_track_is_numpy_s(ica_run, mode,
                                                                       request):
    from sonicatlas.app.data import read_run
    from sonicatlas.app.map import aggregate, nearest_track

    if mode == "cluster":
        from sonicatlas.app.cluster_data import read_run_on_cluster

        request.getfixturevalue("client")
        data = read_run_on_cluster(str(ica_run))
    else:
        data = read_run(str(ica_run))
    tracks = pd.read_parquet(ica_run / "assignments")
    assert data.projections == ["pca", "ica"]
    held = data.access.frame if mode == "local" else data.tracks.compute()
    held = held.set_index("track_id").loc[tracks["track_id"]]
    for column in ("ica1", "ica2"):
        assert held[column].dtype == np.float32
        np.testing.assert_array_equal(held[column].to_numpy(), tracks[column].to_numpy())
    points = tracks[["ica1", "ica2"]].to_numpy(np.float64)
    mask = data.access.select(lambda part: np.ones(len(part), dtype=bool))  # every track
    for x, y in ((0.3, -0.7), (-1.4, 1.1)):
        found = nearest_track(data, mask, x, y, ("ica1", "ica2"))
        best = int(np.argmin(((points - [x, y]) ** 2).sum(axis=1)))
        assert found["track_id"].iloc[0] == tracks["track_id"].iloc[best]
    image = aggregate(data, mask, "density", (-5.0, 5.0), (-5.0, 5.0), ("ica1", "ica2"))
    assert np.nansum(image.data["tracks"]) == len(tracks)
