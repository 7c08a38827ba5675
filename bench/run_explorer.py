"""How fast the explorer answers, driven in Chromium as a user drives it.

Starts ``sonicatlas serve RUN`` in its own process, opens it in Debian's Chromium through
Playwright, and times each interaction from the user's action until the page shows its result:
a filter change (until the count reads the new number), a zoom of the map (until the map's
canvas changes), a click on the map (until the nearest track's details and its 10 most similar
songs show), a search (until the first match's similar songs show), picking another result
(until its similar songs show) and generating a playlist (until its summary shows). Records
the server's peak memory (its RSS high-water mark, from /proc).

    python bench/run_explorer.py runs/sample --repeat 5 --out bench/results/explorer.json
    python bench/run_explorer.py runs/sample --screenshot docs/explorer.png
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

CHROMIUM = "/usr/bin/chromium"


def start_server(run: str, port: int) -> tuple[subprocess.Popen, str, float]:
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "sonicatlas.cli", "serve", run, "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})
    for line in process.stdout:
        found = re.search(r"at (http://127\.0\.0\.1:\d+/)", line)
        if found:
            return process, found.group(1), time.perf_counter() - started
    raise RuntimeError(f"the server did not start: exit {process.wait()}")


def peak_rss_gib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 2**20
    return float("nan")


def count(page) -> int:
    text = page.locator("h3").filter(has_text="tracks").first.inner_text()
    return int(re.search(r"([\d,]+) tracks", text).group(1).replace(",", ""))


def until(page, predicate, seconds: float = 60.0) -> None:
    """Poll ``predicate`` through Playwright's own waits, which let its events arrive."""
    start = time.perf_counter()
    while not predicate():
        if time.perf_counter() - start > seconds:
            raise TimeoutError("no answer")
        page.wait_for_timeout(10)


def heading(page) -> str:
    found = page.locator("text=/^Most like/")
    return found.first.inner_text() if found.count() else ""


def search_and_pick(page, repeat: int, timings: dict) -> None:
    """A search until its first match's similar songs show; another pick until its own do."""
    page.locator(".bk-tab", has_text="Search").first.click()
    box = page.get_by_placeholder("a song or an artist, e.g. beyonce")
    box.wait_for(timeout=120_000)
    for i in range(repeat):
        before = heading(page)
        started = time.perf_counter()
        box.fill(["love", "night", "blue", "dance", "sun", "rain", "fire"][i % 7])
        box.press("Enter")
        until(page, lambda b=before: heading(page) not in ("", b))
        timings["search"].append(time.perf_counter() - started)
        before = heading(page)
        started = time.perf_counter()
        page.locator("select[size]").first.select_option(index=1 + i % 5)
        until(page, lambda b=before: heading(page) not in ("", b))
        timings["similar"].append(time.perf_counter() - started)


def make_playlists(page, repeat: int, timings: dict) -> None:
    """Generate a playlist from each cluster in turn, until its summary shows."""
    page.locator(".bk-tab", has_text="Playlist").first.click()
    button = page.get_by_role("button", name="Generate the playlist")
    button.wait_for(timeout=60_000)
    summary = page.locator("text=/most similar to/")
    for i in range(repeat):
        page.locator("select:visible").last.select_option(index=i % 3)
        before = summary.first.inner_text() if summary.count() else ""
        started = time.perf_counter()
        button.click()
        until(page, lambda b=before: summary.count() > 0 and summary.first.inner_text() != b)
        timings["playlist"].append(time.perf_counter() - started)


def measure(url: str, repeat: int, screenshot: str | None = None) -> dict:
    timings = {"filter": [], "zoom": [], "click": [], "search": [], "similar": [],
               "playlist": []}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM,
                                             args=["--headless", "--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        # the server's answers: a re-aggregated map arrives as one large websocket message
        frames = []
        page.on("websocket", lambda ws: ws.on(
            "framereceived", lambda payload: frames.append((time.perf_counter(), len(payload)))))
        load_start = time.perf_counter()
        page.goto(url)
        page.wait_for_selector("text=tracks", timeout=120_000)
        load = time.perf_counter() - load_start
        total = count(page)
        box = page.get_by_placeholder("part of a name")
        for i in range(repeat):
            # a filter change: an artist substring, then back to every track
            text = f"{i + 1}"
            before = count(page)
            started = time.perf_counter()
            box.fill(text)
            box.press("Enter")
            until(page, lambda before=before: count(page) != before)
            timings["filter"].append(time.perf_counter() - started)
            box.fill("")
            box.press("Enter")
            until(page, lambda: count(page) == total)
        page.locator(".bk-tab", has_text="Map").first.click()
        canvas = page.locator(".bk-Canvas").first
        canvas.wait_for(timeout=120_000)
        page.wait_for_timeout(3000)
        if screenshot:  # the whole catalog, before any zoom
            page.screenshot(path=screenshot)
        area = canvas.bounding_box()
        middle = (area["x"] + area["width"] / 2, area["y"] + area["height"] / 2)
        for i in range(repeat):
            page.mouse.move(*middle)
            page.wait_for_timeout(1000)
            started = time.perf_counter()
            page.mouse.wheel(0, -300 if i % 2 == 0 else 300)
            # a view is width x height x 3 bytes (dominant cluster, count): far above 100 KB
            until(page, lambda s=started: any(t > s and size > 100_000 for t, size in frames))
            timings["zoom"].append(
                min(t for t, size in frames if t > started and size > 100_000) - started)
        details = page.locator("text=/at \\(-?\\d/")
        for i in range(repeat):
            before = details.first.inner_text() if details.count() else ""
            started = time.perf_counter()
            page.mouse.click(middle[0] + 15 * (i + 1), middle[1] - 10 * (i + 1))
            until(page, lambda b=before: details.count() > 0 and details.first.inner_text() != b)
            timings["click"].append(time.perf_counter() - started)
        search_and_pick(page, repeat, timings)
        make_playlists(page, repeat, timings)
        browser.close()
    return {"page_load_s": load, "tracks": total,
            **{f"{name}_median_s": statistics.median(v) for name, v in timings.items()},
            "samples_s": timings}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", help="cluster-tracks run directory")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--port", type=int, default=5016)
    parser.add_argument("--out", help="write the results as JSON here")
    parser.add_argument("--screenshot", help="save a screenshot of the map tab here")
    args = parser.parse_args()
    process, url, startup = start_server(args.run, args.port)
    try:
        result = measure(url, args.repeat, args.screenshot)
        result |= {"server_start_s": startup, "server_peak_rss_gib": peak_rss_gib(process.pid),
                   "run": args.run, "machine": f"{platform.node()} {os.cpu_count()} cores",
                   "command": " ".join(sys.argv)}
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
    print(json.dumps({k: v for k, v in result.items() if k != "samples_s"}, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
