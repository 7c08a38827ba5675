"""cluster-tracks against a single-process pandas + scikit-learn pipeline, same data, same run.

    python bench/run_bench.py --rows 1_000_000 10_000_000 --k 6 --repeat 3 \
        --data-dir /tmp/sonicatlas-bench [--engines sonicatlas dask-ml] [--peers dask-ml spark]

For each N: generate the synthetic catalog once (cached in --data-dir), then run the job (Python
API, LocalCluster included) on each of ``--engines`` (``engine:`` in the config; default both)
and the reference pipeline side by side, ``--repeat`` times (the order rotated each repeat),
print medians and write bench/results/<date>-<N>.json. ``--peers`` also runs dask-ml and/or
Spark MLlib pipelines with their defaults (bench/peers.py) in the first repeat, after the job
and the reference. See docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.dataset as pds
from peers import PEER_STAGES, PEERS  # bench/peers.py: this script's directory is on sys.path

from sonicatlas.contract import FEATURES, TRACK_ID, VALID_RANGES

# The job, scikit-learn and the config are imported where they are used: LocalCluster's
# workers are spawned processes that import this script again, and imports at the top would
# add to every worker's start a cost that the CLI does not pay.

RESULTS = Path(__file__).parent / "results"
COMPARED = ("read + validate", "scale", "pca", "kmeans")  # job stages the reference also has
LIBS = ("numpy", "pandas", "scikit-learn", "dask", "distributed", "dask-ml", "pyarrow")


def machine() -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                if line.startswith("model name")), platform.processor())
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {"cpu": cpu, "cores": os.cpu_count(), "ram_gib": round(ram, 1),
            "python": platform.python_version(), **{lib: version(lib) for lib in LIBS}}


def code_version() -> dict:
    """HEAD and a digest of the job's sources: other people edit them while benchmarks run."""
    root = Path(__file__).resolve().parents[1]
    files = sorted([*root.glob("lib/sonicatlas/**/*.py"), *root.glob("jobs/*.py")])
    digest = hashlib.sha1(b"".join(f.read_bytes() for f in files)).hexdigest()[:12]
    head = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
                          capture_output=True, text=True).stdout.strip()
    return {"commit": head, "source_sha1": digest}


class PeakRSS:
    """Peak summed RSS of this process and all its descendants (LocalCluster workers), sampled."""

    def __init__(self, interval: float = 0.1):
        import psutil  # a dependency of distributed

        self.me, self.interval, self.peak = psutil.Process(), interval, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self):
        while not self._stop.is_set():
            self._measure()
            self._stop.wait(self.interval)

    def _measure(self):
        total = 0
        for proc in [self.me, *self.me.children(recursive=True)]:
            try:
                total += proc.memory_info().rss
            except Exception:  # a worker that just exited
                pass
        self.peak = max(self.peak, total)
        return total

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    @property
    def gib(self) -> float:
        return round(self.peak / 2**30, 2)


def ensure_catalog(data_dir: Path, rows: int) -> Path:
    path = data_dir / f"tracks-{rows}"
    if path.exists():
        try:
            if pds.dataset(path, format="parquet").count_rows() == rows:
                print(f"catalog: reusing {path}")
                return path
        except Exception as exc:  # unreadable or partial: generate again
            print(f"catalog: {path} unusable ({exc}); regenerating")
    from sonicatlas.synthetic.tracks import generate_tracks

    start = time.perf_counter()
    generate_tracks(str(path), rows=rows, seed=0, rows_per_partition=1_000_000, overwrite=True)
    print(f"catalog: generated {rows:,} rows in {time.perf_counter() - start:.1f} s -> {path}")
    return path


ENGINES = ("sonicatlas", "dask-ml")  # the config's ``engine:`` values


def run_job(path: Path, k: int, work: Path, engine: str = "sonicatlas") -> dict:
    from jobs.cluster_tracks import Config, run
    from sonicatlas.config import load_config

    cfg = load_config(Config, None, [f"input={path}", f"k={k}", f"engine={engine}"])
    with PeakRSS() as rss:
        start, started = time.perf_counter(), time.time()
        summary = run(cfg, out=str(work / "run"), overwrite=True, echo=lambda *a: None)
        total = time.perf_counter() - start
    return {"seconds": {**summary.seconds, END_TO_END: last_output(work / "run", started),
                        "total": round(total, 3)},
            "inertia": summary.inertia, "n_iter": summary.n_iter, "peak_rss_gib": rss.gib}


#: the end point measured: read, clean, scale, PCA, KMeans, write the assignments and the
#: summaries, render the maps. For the job: from run() until the last of those files is
#: written (the workers write the assignments in the background, so the stage times alone do
#: not say when); for the reference: its read + scale + PCA + KMeans.
END_TO_END = "(end to end)"
OUTPUTS = ("assignments", "query", "summary", "maps", "model")


def last_output(run_dir: Path, started: float) -> float:
    """Seconds from ``started`` (epoch) to the newest file under the run's tables and maps."""
    newest = max(f.stat().st_mtime for part in OUTPUTS for f in (run_dir / part).rglob("*")
                 if f.is_file())
    return round(newest - started, 3)


def run_reference(path: Path, k: int) -> dict:
    from sklearn.cluster import KMeans
    from sklearn.decomposition import PCA
    from sklearn.preprocessing import StandardScaler

    seconds, t = {}, time.perf_counter()

    def lap(name):
        nonlocal t
        now = time.perf_counter()
        seconds[name], t = round(now - t, 3), now

    with PeakRSS() as rss:
        start = t
        frame = pd.read_parquet(path, columns=[TRACK_ID, *FEATURES])
        X = frame[list(FEATURES)].to_numpy(dtype=np.float64)
        ok = np.isfinite(X).all(axis=1) & frame[TRACK_ID].notna().to_numpy()
        for j, name in enumerate(FEATURES):
            ok &= VALID_RANGES[name].contains(X[:, j])
        ok &= ~frame[TRACK_ID].duplicated().to_numpy()
        X = X[ok]
        del frame
        lap("read + validate")
        Xs = StandardScaler().fit_transform(X)
        del X
        lap("scale")
        try:
            PCA(svd_solver="covariance_eigh").fit(Xs)
        except ValueError:  # scikit-learn < 1.5
            PCA(svd_solver="full").fit(Xs)
        lap("pca")
        km = KMeans(n_clusters=k, n_init=1, random_state=0).fit(Xs)
        lap("kmeans")
        seconds["total"] = round(time.perf_counter() - start, 3)
    return {"seconds": seconds, "inertia": float(km.inertia_), "n_iter": int(km.n_iter_),
            "rows": int(ok.sum()), "peak_rss_gib": rss.gib}


def run_peers(names: list[str], path: Path, k: int) -> dict:
    """Each named peer once; a failure is recorded, not raised, so the job's numbers survive."""
    out = {}
    for name in names:
        try:
            out[name] = PEERS[name](path, k, PeakRSS)
        except Exception as exc:  # any failure: record it, keep the rest of the run
            out[name] = {"error": f"{type(exc).__name__}: {exc}"}
        print(f"peer {name}: {out[name].get('seconds', out[name])}", flush=True)
    return out


def median(values):
    return statistics.median(values) if values else None  # None: the reference has no such stage


def paired(tops: list[dict], bottoms: list[dict], stage: str):
    """Median over repeats of one run's seconds over another's in the same repeat."""
    return median([a["seconds"][stage] / b["seconds"][stage]
                   for a, b in zip(tops, bottoms, strict=True)
                   if stage in a["seconds"] and b["seconds"].get(stage)])


def report(rows: int, k: int, trials: list[dict], info: dict) -> dict:
    engines = list(trials[0]["jobs"])
    jobs = {e: [t["jobs"][e] for t in trials] for e in engines}
    refs = [t["reference"] for t in trials]
    for run_ in (*(j for runs in jobs.values() for j in runs), *refs):
        run_["seconds"]["(4 compared)"] = round(sum(run_["seconds"][s] for s in COMPARED), 3)
    for ref in refs:
        ref["seconds"][END_TO_END] = ref["seconds"]["(4 compared)"]
    stages = list(dict.fromkeys(s for runs in jobs.values() for j in runs for s in j["seconds"]))
    first = engines[0]
    print(f"\n== {rows:,} rows, k={k}, {len(trials)} repeat(s), medians; ratios paired per "
          f"repeat ==")
    header = ("".join(f"{e + ' s':>13}" for e in engines) + f"{'ref s':>9}"
              + "".join(f"{e + '/ref':>15}" for e in engines)
              + "".join(f"{e + '/' + first:>22}" for e in engines[1:]))
    print(f"{'stage':<16}{header}")
    med = {}
    for stage in stages:
        row = {e: median([j["seconds"][stage] for j in jobs[e] if stage in j["seconds"]])
               for e in engines}
        row["reference"] = median([r["seconds"][stage] for r in refs if stage in r["seconds"]])
        row.update({f"{e}/reference": paired(jobs[e], refs, stage) for e in engines})
        row.update({f"{e}/{first}": paired(jobs[e], jobs[first], stage) for e in engines[1:]})
        med[stage] = row
        cells = [f"{row[e]:13.2f}" if row[e] is not None else f"{'-':>13}" for e in engines]
        cells.append(f"{row['reference']:9.2f}" if row["reference"] is not None else f"{'-':>9}")
        cells += [f"{row[f'{e}/reference']:15.2f}" if row[f"{e}/reference"] is not None
                  else " " * 15 for e in engines]
        cells += [f"{row[f'{e}/{first}']:22.2f}" if row[f"{e}/{first}"] is not None
                  else " " * 22 for e in engines[1:]]
        print(f"{stage:<16}" + "".join(cells))
    ref_cost = median([r["inertia"] for r in refs])
    costs = {"reference": ref_cost}
    for e in engines:
        cost = median([j["inertia"] for j in jobs[e]])
        rel = (cost - ref_cost) / ref_cost
        costs[e] = {"cost": cost, "relative": rel}
        print(f"cost: {e} {cost:,.1f} ({jobs[e][0]['n_iter']} it), sklearn {ref_cost:,.1f} "
              f"({refs[0]['n_iter']} it); relative difference {rel:+.2e}")
    print("peak RSS (process tree, median): " + ", ".join(
        f"{e} {median([j['peak_rss_gib'] for j in jobs[e]])} GiB" for e in engines)
        + f", reference {median([r['peak_rss_gib'] for r in refs])} GiB")
    out = {"medians": med, "cost": costs}
    if "peers" in trials[0]:
        out["peers"] = report_peers(trials[0]["jobs"][first], ref_cost, trials[0]["peers"])
    print("machine: " + ", ".join(f"{key} {val}" for key, val in info.items()))
    return out


def report_peers(job: dict, ref_cost: float, peers: dict) -> dict:
    """Peer stages next to the same repeat's job, ratios peer / job; costs against sklearn's."""
    js = job["seconds"]
    job_s = {"start session": js.get("start cluster"),
             "read + scale (+cache)": js["read + validate"] + js["scale"],
             "pca": js["pca"], "kmeans": js["kmeans"], "stop session": None,
             "read+scale+pca+kmeans": js["(4 compared)"], "total": js["total"]}
    ran = {name: p for name, p in peers.items() if "seconds" in p}
    for p in ran.values():
        p["seconds"]["read+scale+pca+kmeans"] = round(sum(p["seconds"][s] for s in PEER_STAGES), 3)
    print("\n-- peers, repeat 1, ratio = peer / job of the same repeat --")
    print(f"{'stage':<23}{'job s':>8}" + "".join(f"{name + ' s':>11}{'ratio':>9}" for name in ran))
    for stage, j in job_s.items():
        cells = f"{j:8.2f}" if j is not None else f"{'-':>8}"
        for p in ran.values():
            v = p["seconds"].get(stage)
            cells += f"{v:11.2f}" if v is not None else f"{'-':>11}"
            cells += f"{v / j:9.2f}" if v is not None and j else " " * 9
        print(f"{stage:<23}{cells}")
    out = {}
    for name, p in peers.items():
        if name not in ran:
            print(f"{name}: {'skipped: ' + p['skipped'] if 'skipped' in p else p['error']}")
            out[name] = p
            continue
        rel, rel_job = ((p["inertia"] - c) / c for c in (ref_cost, job["inertia"]))
        print(f"{name}: cost {p['inertia']:,.1f} ({p['n_iter']} it; {rel:+.2e} vs sklearn, "
              f"{rel_job:+.2e} vs job), {p['rows']:,} rows, peak RSS {p['peak_rss_gib']} GiB")
        out[name] = {"seconds": p["seconds"], "relative_cost": rel, "relative_cost_job": rel_job,
                     "ratio_total": round(p["seconds"]["total"] / js["total"], 3),
                     "ratio_compared": round(p["seconds"]["read+scale+pca+kmeans"]
                                             / js["(4 compared)"], 3)}
    return out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000])
    parser.add_argument("--k", type=int, default=6)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--data-dir", type=Path, default=Path("/tmp/sonicatlas-bench"))
    parser.add_argument("--engines", nargs="+", choices=ENGINES, default=list(ENGINES),
                        help="run the job on each of these engines (engine: in the config)")
    parser.add_argument("--peers", nargs="+", choices=list(PEERS), default=[],
                        help="also run these peer pipelines once per row count (bench/peers.py)")
    args = parser.parse_args(argv)
    info, code = machine(), code_version()
    print(f"code: {code}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    engines = list(dict.fromkeys(args.engines))
    runs = [*engines, "reference"]
    for rows in args.rows:
        path = ensure_catalog(args.data_dir, rows)
        trials = []
        for i in range(args.repeat):
            with tempfile.TemporaryDirectory(dir=args.data_dir) as work:
                # each repeat starts one later in the list, so no run always goes first
                order = runs[i % len(runs):] + runs[:i % len(runs)]
                trial = {"order": order, "code": code_version(), "jobs": {}}
                if trial["code"] != code:  # workers would import the new code, the client not
                    print(f"WARNING: sources changed since start: {trial['code']}")
                for which in order:
                    if which == "reference":
                        trial["reference"] = result = run_reference(path, args.k)
                    else:
                        trial["jobs"][which] = result = run_job(path, args.k, Path(work), which)
                    print(f"repeat {i + 1} {which}: {result['seconds']}", flush=True)
                trial["jobs"] = {e: trial["jobs"][e] for e in engines}  # in --engines order
                if i == 0 and args.peers:  # after all, so no timing shares the machine
                    trial["peers"] = run_peers(args.peers, path, args.k)
                trials.append(trial)
        summary = report(rows, args.k, trials, info)
        rusage = {who: resource.getrusage(getattr(resource, who)).ru_maxrss / 2**20
                  for who in ("RUSAGE_SELF", "RUSAGE_CHILDREN")}  # KiB -> GiB, largest process
        result = {"date": dt.datetime.now().isoformat(timespec="seconds"), "rows": rows,
                  "k": args.k, "engines": engines,
                  "command": " ".join([sys.executable, *sys.argv]),
                  "machine": info, "code": code, "trials": trials, "maxrss_gib": rusage, **summary}
        out = RESULTS / f"{dt.date.today().isoformat()}-{rows}.json"
        out.write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {out}")


if __name__ == "__main__":
    main()
