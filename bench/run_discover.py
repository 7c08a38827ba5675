"""Discovery over a run: similar songs, search and assign, with faiss and numpy beside them.

    python bench/run_discover.py --rows 10_000_000 --data-dir /tmp/sonicatlas-bench \
        [--queries 20] [--assign-rows 1_000_000] [--workers 2]

For each N: the synthetic catalog and a cluster-tracks run of it are made once (cached in
--data-dir; a run without query data is made again). Then, side by side on the same matrix:

- similar songs through the library on the matrix in memory (``similar_to``, as the explorer
  calls it), cosine and euclidean; faiss-cpu's exact ``IndexFlatIP`` on the same vectors,
  normalised (the peer; its overlap with the exact top-10 is reported); one numpy pass over the
  matrix (``vectors @ q``, float32) as the floor;
- the same query from the command line, start-up included (``sonicatlas similar``);
- the same query over the run's files on a LocalCluster (``similar_tracks``: a task per
  partition, one merge), the matrix not held;
- search: the folded names built once (``NameIndex``) and then warm queries, and over the run
  on the LocalCluster;
- assign of ``--assign-rows`` new tracks on the LocalCluster.

Prints medians and writes bench/results/<date>-discover-<N>.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from run_bench import code_version, ensure_catalog, machine  # this directory is on sys.path

RESULTS = Path(__file__).parent / "results"
SEARCHES = ("love", "sugar rain", "the midnight", "zz top", "beyonce")


def timed(func, *args, **kwargs):
    start = time.perf_counter()
    value = func(*args, **kwargs)
    return time.perf_counter() - start, value


def stats(seconds: list[float]) -> dict:
    ordered = sorted(seconds)
    return {"median_s": round(statistics.median(ordered), 4),
            "p95_s": round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 4),
            "min_s": round(ordered[0], 4), "n": len(ordered)}


def ensure_run(data_dir: Path, catalog: Path, rows: int, k: int) -> tuple[Path, float | None]:
    run = data_dir / f"run-{rows}"
    if (run / "manifest.json").exists() and (run / "query").is_dir():
        print(f"run: reusing {run}")
        return run, None
    from jobs.cluster_tracks import Config
    from jobs.cluster_tracks import run as run_job
    from sonicatlas.config import load_config

    config = load_config(Config, None, [f"input={catalog}", f"k={k}"])
    seconds, _ = timed(run_job, config, out=str(run), overwrite=True, echo=lambda *a: None)
    print(f"run: cluster-tracks on {rows:,} rows in {seconds:.1f} s -> {run}")
    return run, round(seconds, 2)


def ensure_new_catalog(data_dir: Path, rows: int) -> Path:
    """New releases for assign: another seed than the run's catalog, cached."""
    path = data_dir / f"new-tracks-{rows}"
    if not path.exists():
        from sonicatlas.synthetic.tracks import generate_tracks
        generate_tracks(str(path), rows=rows, seed=1, rows_per_partition=1_000_000)
    return path


def similar_in_memory(matrix, queries: list[int]) -> dict:
    from sonicatlas.discover.similar import similar_to

    out = {}
    for metric in ("cosine", "euclidean"):
        times = []
        for row in queries:
            track = matrix.ids[row].as_py()
            seconds, _ = timed(similar_to, matrix.vectors, matrix.ids, matrix.vectors[row], 10,
                               metric, exclude=track)
            times.append(seconds)
        out[metric] = stats(times)
    return out


def numpy_floor(matrix, queries: list[int]) -> dict:
    times = []
    for row in queries:
        seconds, _ = timed(np.dot, matrix.vectors, matrix.vectors[row])
        times.append(seconds)
    return stats(times)


def faiss_peer(matrix, queries: list[int], exact: dict) -> dict:
    try:
        import faiss
    except ImportError:
        return {"skipped": "faiss-cpu is not installed (pip install -e '.[bench]')"}
    start = time.perf_counter()
    normed = np.ascontiguousarray(matrix.vectors, dtype=np.float32).copy()
    faiss.normalize_L2(normed)
    index = faiss.IndexFlatIP(normed.shape[1])
    index.add(normed)
    build = time.perf_counter() - start
    times, overlap = [], []
    for row in queries:
        seconds, (_, found) = timed(index.search, normed[row:row + 1], 11)
        times.append(seconds)
        got = [i for i in found[0] if i != row][:10]
        overlap.append(len(set(got) & exact[row]) / 10)
    return {"build_s": round(build, 3), "threads": faiss.omp_get_max_threads(), **stats(times),
            "overlap_with_exact_top10": round(float(np.mean(overlap)), 4)}


def similar_cli(run: Path, track_ids: list[str]) -> dict:
    times = []
    for track in track_ids:
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "sonicatlas.cli", "similar", str(run), "--track",
                        track, "--format", "csv"], check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return stats(times)


def in_memory(result: dict, query_run, run: Path, args) -> list[str]:
    """The queries on the matrix held in this process, faiss and the floor beside them, the
    CLI, and search on the names held here; returns the queried track ids."""
    import pandas as pd

    from sonicatlas.discover.querydata import load_matrix
    from sonicatlas.discover.search import NameIndex
    from sonicatlas.discover.similar import similar_to

    load_s, matrix = timed(load_matrix, query_run)
    result["load_matrix_s"] = round(load_s, 3)
    rng = np.random.default_rng(0)
    queries = [int(r) for r in rng.choice(len(matrix.vectors), args.queries, replace=False)]
    exact = {row: set(similar_to(matrix.vectors, matrix.ids, matrix.vectors[row], 10,
                                 exclude=matrix.ids[row].as_py())["position"])
             for row in queries}
    result["similar_library"] = similar_in_memory(matrix, queries)
    result["numpy_floor"] = numpy_floor(matrix, queries)
    result["faiss_flat_ip"] = faiss_peer(matrix, queries, exact)
    ids = [matrix.ids[r].as_py() for r in queries[:args.cli_queries]]
    result["similar_cli"] = similar_cli(run, ids)
    print(json.dumps({k: result[k] for k in ("load_matrix_s", "similar_library",
                                             "numpy_floor", "faiss_flat_ip",
                                             "similar_cli")}, indent=1), flush=True)

    columns = [c for c in ("track_id", "track_name", "artist_name", "popularity")
               if c in (*query_run.carried, "track_id")]
    names = pd.read_parquet(run / "assignments", columns=columns)
    build_s, index = timed(NameIndex, names)
    warm = [timed(index.search, text)[0] for text in SEARCHES]
    result["search_library"] = {"build_s": round(build_s, 3), **stats(warm)}
    del names, index, matrix
    return ids


def query_ids(query_run, count: int) -> list[str]:
    """``count`` track ids drawn reproducibly from the run's first query part."""
    import pyarrow.parquet as pq

    with query_run.fs.open(query_run.query_file(query_run.parts[0])) as part:
        ids = pq.read_table(part, columns=["track_id"])["track_id"]
    rng = np.random.default_rng(0)
    return [ids[int(r)].as_py() for r in rng.choice(len(ids), count, replace=False)]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000])
    parser.add_argument("--k", type=int, default=6)
    parser.add_argument("--queries", type=int, default=20)
    parser.add_argument("--cli-queries", type=int, default=3)
    parser.add_argument("--assign-rows", type=int, default=1_000_000)
    parser.add_argument("--workers", type=int, default=2, help="LocalCluster workers")
    parser.add_argument("--data-dir", type=Path, default=Path("/tmp/sonicatlas-bench"))
    parser.add_argument("--searches", type=int, default=3,
                        help="searches over the run on the LocalCluster (of the five names)")
    parser.add_argument("--over-run-only", action="store_true",
                        help="only the queries over the run's files on the LocalCluster and the "
                             "CLI (for runs whose matrix this machine should not hold)")
    args = parser.parse_args(argv)
    from distributed import Client, LocalCluster

    from sonicatlas.discover.assign import assign_catalog
    from sonicatlas.discover.querydata import open_query_run
    from sonicatlas.discover.search import search_tracks
    from sonicatlas.discover.similar import similar_tracks

    info, code = machine(), code_version()
    RESULTS.mkdir(parents=True, exist_ok=True)
    for rows in args.rows:
        catalog = ensure_catalog(args.data_dir, rows)
        run, job_seconds = ensure_run(args.data_dir, catalog, rows, args.k)
        result = {"date": dt.datetime.now().isoformat(timespec="seconds"), "rows": rows,
                  "command": " ".join([sys.executable, *sys.argv]), "machine": info,
                  "code": code, "job_seconds": job_seconds}
        query_run = open_query_run(str(run))
        if args.over_run_only:
            ids = query_ids(query_run, args.queries)
            result["similar_cli"] = similar_cli(run, ids[:args.cli_queries])
        else:
            ids = in_memory(result, query_run, run, args)
        with LocalCluster(n_workers=args.workers, threads_per_worker=1,
                          dashboard_address="127.0.0.1:0") as cluster, Client(cluster) as client:
            over_run = [timed(similar_tracks, query_run, track)[0] for track in ids]
            result["similar_over_run_localcluster"] = stats(over_run)
            searched = [timed(search_tracks, query_run, text)[0]
                        for text in SEARCHES[:args.searches]]
            result["search_over_run_localcluster"] = stats(searched)
            new = ensure_new_catalog(args.data_dir, args.assign_rows)
            assign_s, assigned = timed(assign_catalog, str(run), str(new),
                                       str(args.data_dir / f"assigned-{rows}"), client,
                                       overwrite=True)
            result["assign"] = {"rows": args.assign_rows, "seconds": round(assign_s, 3),
                                "accepted": assigned.counts["rows_accepted"]}
        print(json.dumps({k: result.get(k) for k in ("search_library",
                                                 "similar_over_run_localcluster",
                                                 "search_over_run_localcluster", "assign")},
                         indent=1), flush=True)
        out = RESULTS / f"{dt.date.today().isoformat()}-discover-{rows}.json"
        out.write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {out}")


if __name__ == "__main__":
    main()
