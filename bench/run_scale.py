"""cluster-tracks at one catalog size as a user runs it (the CLI), with peak memory and spill.

    python bench/run_scale.py --rows 100_000_000 --data-dir /tmp/sonicatlas-bench \
        [--set carry_reading=hold] [--label NAME]

Generates the catalog once (``sonicatlas generate tracks``, reused when the row count
matches), runs ``sonicatlas run cluster-tracks`` on it in a child process, and samples every
0.5 s the summed RSS of the whole process tree (the LocalCluster workers included), the
machine's used memory and the size of dask's spill directories. Writes
``bench/results/<date>-scale-<rows>[-<label>].json`` (stage seconds from the run's manifest,
seconds per million rows, peaks, and the peak RSS within each stage, placed by the time the
CLI printed the stage's line) and the run's Dask performance report, gzipped, to
``bench/results/reports/``. See docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil  # a dependency of distributed
from run_bench import PeakRSS, code_version, ensure_catalog, machine  # bench/ is on sys.path

RESULTS = Path(__file__).parent / "results"


class Sampler(PeakRSS):
    """:class:`run_bench.PeakRSS` (this process and its children: the CLI and its workers),
    the peaks of the machine's used memory and of the spill directory's size, and a timeline of
    the RSS, to find each stage's peak."""

    def __init__(self, spill_root: Path, interval: float = 0.5):
        super().__init__(interval)
        self.spill_root, self.peak_used, self.peak_spill = spill_root, 0, 0
        self.timeline: list[tuple[float, int]] = []

    def _measure(self):
        self.timeline.append((time.perf_counter(), super()._measure()))
        vm = psutil.virtual_memory()
        self.peak_used = max(self.peak_used, vm.total - vm.available)
        total = 0
        for root, _, files in os.walk(self.spill_root):  # errors (removed while walking): skip
            for name in files:
                try:
                    total += os.stat(os.path.join(root, name)).st_size
                except OSError:
                    pass
        self.peak_spill = max(self.peak_spill, total)


def stage_peaks(timeline, ended, seconds: dict[str, float]) -> dict[str, float]:
    """Peak RSS (GiB) within each stage: a stage's line ``  <name> <seconds> s`` is printed as
    it ends, so it ran over the seconds before that line."""
    peaks = {}
    for when, line in ended:
        match = STAGE_LINE.match(line)
        if match and match["name"] in seconds:
            start = when - float(match["seconds"])
            inside = [rss for t, rss in timeline if start <= t <= when]
            if inside:
                peaks[match["name"]] = max(peaks.get(match["name"], 0),
                                           round(max(inside) / 2**30, 2))
    return peaks


STAGE_LINE = re.compile(r"^  (?P<name>\S.*?)\s+(?P<seconds>[0-9.]+) s$")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, required=True)
    parser.add_argument("--k", type=int, default=6)
    parser.add_argument("--data-dir", type=Path, default=Path("/tmp/sonicatlas-bench"))
    parser.add_argument("--keep-run", action="store_true", help="keep the run directory")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a config override for the run, e.g. carry_reading=hold")
    parser.add_argument("--label", default="", help="appended to the record's name")
    args = parser.parse_args(argv)
    catalog = ensure_catalog(args.data_dir, args.rows)
    work = Path(tempfile.mkdtemp(dir=args.data_dir))
    out = work / "run"
    spill = work / "dask-scratch"
    command = [sys.executable, "-m", "sonicatlas.cli", "run", "cluster-tracks",
               "--set", f"input={catalog}", "--set", f"k={args.k}", "--out", str(out),
               *(arg for pair in args.set for arg in ("--set", pair))]
    print(" ".join(command), flush=True)
    start = time.perf_counter()
    # the workers spill under dask's temporary-directory: a fresh one, to measure it
    with Sampler(spill) as sampler:
        child = subprocess.Popen(command, stdout=subprocess.PIPE, text=True,
                                 env={**os.environ, "DASK_TEMPORARY_DIRECTORY": str(spill)})
        ended = []  # (when the CLI printed a stage's line, the line)
        for line in child.stdout:
            ended.append((time.perf_counter(), line))
            print(line, end="", flush=True)
        code = child.wait()
    wall = time.perf_counter() - start
    if code != 0:
        raise SystemExit(f"the run failed with exit code {code}")
    manifest = json.loads((out / "manifest.json").read_text())
    seconds = manifest["seconds"]
    result = {
        "date": dt.datetime.now().isoformat(timespec="seconds"), "rows": args.rows, "k": args.k,
        "command": " ".join(command), "machine": machine(), "code": code_version(),
        "wall_seconds": round(wall, 1),
        "seconds_per_million_rows": round(wall / (args.rows / 1e6), 3),
        "stage_seconds": seconds, "carry_reading": manifest.get("carry_reading"),
        "inertia": manifest["metrics"]["inertia"] if "metrics" in manifest else None,
        "peak_rss_gib": sampler.gib,
        "peak_used_memory_gib": round(sampler.peak_used / 2**30, 2),
        "peak_spill_gib": round(sampler.peak_spill / 2**30, 2),
        "peak_rss_by_stage_gib": stage_peaks(sampler.timeline, ended, seconds),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "reports").mkdir(exist_ok=True)
    label = f"-{args.label}" if args.label else ""
    stem = f"{dt.date.today().isoformat()}-scale-{args.rows}{label}"
    report = out / "performance.html"
    if report.exists():
        with report.open("rb") as src, gzip.open(RESULTS / "reports" / f"{stem}.html.gz",
                                                  "wb") as dst:
            shutil.copyfileobj(src, dst)
        result["performance_report"] = f"bench/results/reports/{stem}.html.gz"
    (RESULTS / f"{stem}.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "machine"}, indent=2))
    if not args.keep_run:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
