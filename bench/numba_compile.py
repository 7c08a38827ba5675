"""What the numba kernels cost to compile on a first run, against a run with a warm cache.

    python bench/numba_compile.py --rows 100_000 [--runs 2] [--data-dir /tmp/sonicatlas-bench]

Runs ``cluster-tracks`` (and ``segment-listeners`` over it) on a small generated catalog in a
fresh Python process, ``--runs`` times, all with one new, empty ``NUMBA_CACHE_DIR``: the first
run compiles every kernel it uses (what the first run after an install pays), the later ones
load them from the cache. The cluster is a LocalCluster of threads (``cluster.processes=false``)
so that every compile happens in the process that records it; with worker processes each one
compiles the same kernels (in parallel) on a cold cache. numba's compile events give the
seconds per kernel (top-level compiles only) and the number of signatures compiled. Writes
bench/results/<date>-numba-compile.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
HERE = Path(__file__).resolve().parents[1]
CLUSTER = ["cluster.processes=false", "cluster.n_workers=2", "cluster.threads_per_worker=1",
           "cluster.dashboard_address=127.0.0.1:0"]

CHILD = r"""
import json, sys, time, threading, warnings
from collections import defaultdict
import numba.core.event as event

seconds, signatures, depth, lock = defaultdict(float), defaultdict(int), {}, threading.Lock()

class Compiles(event.Listener):
    # Seconds of top-level compiles per kernel (a compile inside a compile is not counted).
    def on_start(self, ev):
        with lock:
            depth[threading.get_ident()] = depth.get(threading.get_ident(), 0) + 1
            if depth[threading.get_ident()] == 1:
                ev.data["_t"] = time.perf_counter()
    def on_end(self, ev):
        with lock:
            depth[threading.get_ident()] -= 1
            if "_t" in ev.data:
                name = ev.data["dispatcher"].py_func.__qualname__
                module = ev.data["dispatcher"].py_func.__module__
                seconds[f"{module}.{name}"] += time.perf_counter() - ev.data["_t"]
                signatures[f"{module}.{name}"] += 1

event.register("numba:compile", Compiles())
from sonicatlas.config import load_config
import jobs.cluster_tracks as tracks_job, jobs.segment_listeners as listeners_job
catalog, log, out, cluster = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
quiet = lambda *a, **k: None
warnings.simplefilter("ignore")
result = {}
start = time.perf_counter()
tracks_job.run(load_config(tracks_job.Config, None, [*cluster, f"input={catalog}", "k=6"]),
               out=out + "/tracks", echo=quiet)
result["cluster-tracks seconds"] = time.perf_counter() - start
start = time.perf_counter()
listeners_job.run(load_config(listeners_job.Config, None, [
    *cluster, f"listens={log}/listens", f"tracks_run={out}/tracks", "k=6"]),
    out=out + "/listeners", echo=quiet)
result["segment-listeners seconds"] = time.perf_counter() - start
result["compile seconds"] = dict(sorted(seconds.items(), key=lambda kv: -kv[1]))
result["signatures"] = dict(signatures)
result["total compile seconds"] = sum(seconds.values())
print("RESULT " + json.dumps(result))
"""


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--data-dir", type=Path, default=Path("/tmp/sonicatlas-bench"))
    args = parser.parse_args(argv)
    sys.path.insert(0, str(HERE / "bench"))
    from run_bench import code_version, ensure_catalog, machine

    from sonicatlas.synthetic.listens import generate_listens

    args.data_dir.mkdir(parents=True, exist_ok=True)
    catalog = ensure_catalog(args.data_dir, args.rows)
    log = args.data_dir / f"numba-listens-{args.rows}"
    if not (log / "listens").exists():
        generate_listens(str(catalog), str(log), users=max(args.rows // 100, 2),
                         listens=args.rows, seed=0, rows_per_partition=args.rows // 2,
                         overwrite=True)
    runs = []
    with tempfile.TemporaryDirectory(dir=args.data_dir) as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache,
               "PYTHONPATH": f"{HERE / 'lib'}{os.pathsep}{HERE}"}
        for i in range(args.runs):
            with tempfile.TemporaryDirectory(dir=args.data_dir) as out:
                start = time.perf_counter()
                done = subprocess.run([sys.executable, "-c", CHILD, str(catalog), str(log), out,
                                       json.dumps(CLUSTER)], env=env, capture_output=True,
                                      text=True)
                if done.returncode:
                    raise SystemExit(done.stderr[-3000:])
                line = next(x for x in done.stdout.splitlines() if x.startswith("RESULT "))
                result = json.loads(line.removeprefix("RESULT "))
                result["process seconds"] = time.perf_counter() - start
                result["cache"] = "cold" if i == 0 else "warm"
                runs.append(result)
                print(f"run {i + 1} ({result['cache']} cache): compile "
                      f"{result['total compile seconds']:.2f} s, process "
                      f"{result['process seconds']:.1f} s", flush=True)
    record = {"date": dt.datetime.now().isoformat(timespec="seconds"), "rows": args.rows,
              "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
              "machine": machine(), "code": code_version(), "runs": runs}
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{dt.date.today().isoformat()}-numba-compile.json"
    path.write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps(runs[0]["compile seconds"], indent=2))
    print(f"-> {path}")


if __name__ == "__main__":
    main()
