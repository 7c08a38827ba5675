"""Weak scaling: N rows on one worker against W x N rows on W workers, same per-worker limits.

    python bench/run_weak_scaling.py --rows 5_000_000 --workers 1 2 --repeat 3

For each worker count W, starts a real ``dask scheduler`` and W ``dask worker`` processes on
127.0.0.1 (one thread each, the same ``--memory-limit``), runs ``sonicatlas run cluster-tracks
--scheduler ...`` on a catalog of W x N rows, and stops them. The repeats rotate the order of
the worker counts. Time per row should stay flat as W and the rows grow together; the ratio
of each W's median seconds per row to one worker's is printed and written to
``bench/results/<date>-weak-scaling-<rows>.json``. See docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from distributed import Client
from run_bench import code_version, ensure_catalog, machine  # bench/ is on sys.path

RESULTS = Path(__file__).parent / "results"
DASK = shutil.which("dask") or str(Path(sys.executable).with_name("dask"))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Cluster:
    """A scheduler and ``workers`` single-thread workers in their own processes."""

    def __init__(self, workers: int, memory_limit: str, logs: Path):
        self.address = f"tcp://127.0.0.1:{free_port()}"
        self.workers, self.memory_limit, self.logs = workers, memory_limit, logs
        self.processes: list[subprocess.Popen] = []

    def __enter__(self) -> Cluster:
        log = open(self.logs, "a")  # noqa: SIM115 - the processes write to it until stopped
        common = {"stdout": log, "stderr": subprocess.STDOUT, "start_new_session": True}
        port = self.address.rsplit(":", 1)[1]
        self.processes.append(subprocess.Popen(
            [DASK, "scheduler", "--host", "127.0.0.1", "--port", port,
             "--dashboard-address", "127.0.0.1:0"], **common))
        for i in range(self.workers):
            self.processes.append(subprocess.Popen(
                [DASK, "worker", self.address, "--host", "127.0.0.1", "--nthreads", "1",
                 "--memory-limit", self.memory_limit, "--no-dashboard",
                 "--name", f"weak-{i}"], **common))
        with Client(self.address, timeout=60) as client:
            client.wait_for_workers(self.workers, timeout=120)
        return self

    def __exit__(self, *exc) -> None:
        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def run_once(catalog: Path, workers: int, k: int, memory_limit: str, work: Path) -> dict:
    out = work / f"run-{workers}"
    with Cluster(workers, memory_limit, work / "cluster.log") as cluster:
        command = [sys.executable, "-m", "sonicatlas.cli", "run", "cluster-tracks",
                   "--scheduler", cluster.address, "--set", f"input={catalog}",
                   "--set", f"k={k}", "--out", str(out)]
        start = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        wall = time.perf_counter() - start
    manifest = json.loads((out / "manifest.json").read_text())
    shutil.rmtree(out, ignore_errors=True)
    return {"wall_seconds": round(wall, 2), "stage_seconds": manifest["seconds"]}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, required=True, help="rows per worker")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--k", type=int, default=6)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--memory-limit", default="8GiB", help="per worker")
    parser.add_argument("--data-dir", type=Path, default=Path("/tmp/sonicatlas-bench"))
    args = parser.parse_args(argv)
    catalogs = {w: ensure_catalog(args.data_dir, w * args.rows) for w in args.workers}
    work = Path(tempfile.mkdtemp(dir=args.data_dir))
    trials: dict[int, list[dict]] = {w: [] for w in args.workers}
    for i in range(args.repeat):
        order = args.workers[i % len(args.workers):] + args.workers[:i % len(args.workers)]
        for w in order:
            result = run_once(catalogs[w], w, args.k, args.memory_limit, work)
            trials[w].append(result)
            print(f"repeat {i + 1}, {w} worker(s), {w * args.rows:,} rows: "
                  f"{result['wall_seconds']} s", flush=True)
    per_row = {w: statistics.median(t["wall_seconds"] for t in trials[w]) / (w * args.rows)
               for w in args.workers}
    base = per_row[args.workers[0]]
    summary = {w: {"rows": w * args.rows,
                   "median_wall_seconds": statistics.median(t["wall_seconds"]
                                                            for t in trials[w]),
                   "seconds_per_million_rows": round(per_row[w] * 1e6, 3),
                   "per_row_ratio": round(per_row[w] / base, 3)} for w in args.workers}
    for w, s in summary.items():
        print(f"{w} worker(s): {s['rows']:,} rows, median {s['median_wall_seconds']} s, "
              f"{s['seconds_per_million_rows']} s per 1M rows, x{s['per_row_ratio']}")
    result = {"date": dt.datetime.now().isoformat(timespec="seconds"),
              "rows_per_worker": args.rows, "memory_limit": args.memory_limit,
              "machine": machine(), "code": code_version(), "summary": summary,
              "trials": trials}
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"{dt.date.today().isoformat()}-weak-scaling-{args.rows}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
