"""segment-listeners on a generated log, stage by stage, with peak memory; and its floor.

    python bench/run_listeners.py --listens 1_000_000 10_000_000 --repeat 3 \
        [--tracks 1_000_000] [--checkout before=/path/to/other/checkout] [--peers floor spark]

For each log size: make once (cached in --data-dir) a catalog of --tracks tracks, its
cluster-tracks run (k=6) and a log of that many listens by listens / 100 users; then run
``sonicatlas run segment-listeners`` (k=6) in a child process for this checkout and every
``--checkout NAME=PATH`` (another checkout of the repository, e.g. an earlier commit), the order
rotated each repeat, sampling the summed RSS of the child and its workers. Peers, run once per
size: ``floor``, one pass over the log's columns (pyarrow read, then the ids hashed, the weights
summed and the times' range, in numpy); ``spark``, a DataFrame broadcast join and groupBy, then
MLlib KMeans, where pyspark and java are present. Writes bench/results/<date>-listeners-<N>.json.
See docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.dataset as pds
from peers import spark_missing  # bench/ is on sys.path
from run_bench import PeakRSS, code_version, ensure_catalog, machine

RESULTS = Path(__file__).parent / "results"
HERE = Path(__file__).resolve().parents[1]
LOG_COLUMNS = ["user_id", "track_id", "ts", "ms_played"]
K = 6


def ensure_tracks_run(data_dir: Path, catalog: Path, rows: int) -> Path:
    """A cluster-tracks run over the catalog (k=6), made once."""
    run = data_dir / f"tracks-run-{rows}"
    if (run / "manifest.json").exists():
        return run
    subprocess.run([sys.executable, "-m", "sonicatlas.cli", "run", "cluster-tracks",
                    "--set", f"input={catalog}", "--set", f"k={K}", "--out", str(run),
                    "--overwrite"], check=True, env=_env(HERE))
    return run


def ensure_log(data_dir: Path, catalog: Path, listens: int, per_partition: int) -> Path:
    """A generated log of ``listens`` by ``listens // 100`` users, made once."""
    path = data_dir / f"listens-{listens}-{per_partition}"
    if (path / "listens").exists() and pds.dataset(path / "listens").count_rows() == listens:
        return path
    from sonicatlas.synthetic.listens import generate_listens

    generate_listens(str(catalog), str(path), users=max(listens // 100, 1), listens=listens,
                     seed=0, rows_per_partition=per_partition, overwrite=True)
    return path


def _env(checkout: Path) -> dict:
    # The checkout's own code wins over any installed copy of the package.
    return {**os.environ, "PYTHONPATH": f"{checkout / 'lib'}{os.pathsep}{checkout}"}


def run_job(checkout: Path, log: Path, tracks_run: Path, work: Path) -> dict:
    out = work / f"run-{time.monotonic_ns()}"
    command = [sys.executable, "-m", "sonicatlas.cli", "run", "segment-listeners",
               "--set", f"listens={log / 'listens'}", "--set", f"users={log / 'users'}",
               "--set", f"tracks_run={tracks_run}", "--set", f"k={K}", "--out", str(out)]
    start = time.perf_counter()
    with PeakRSS() as rss:
        # run from the checkout, so that its own jobs/ is the one imported
        subprocess.run(command, check=True, env=_env(checkout), cwd=checkout,
                       stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    manifest = json.loads((out / "manifest.json").read_text())
    return {"wall_seconds": round(wall, 2), "stage_seconds": manifest["seconds"],
            "peak_rss_gib": rss.gib, "rows": manifest["rows"],
            "taste_agreement": manifest.get("taste_agreement"), "command": " ".join(command)}


def run_floor(log: Path) -> dict:
    """One pass over the log's columns: read them, hash the ids, sum weights, range of ts."""
    import numpy as np
    import pyarrow.compute as pc

    from sonicatlas.io.duplicates import hash_ids

    start = time.perf_counter()
    table = pds.dataset(log / "listens", format="parquet").to_table(columns=LOG_COLUMNS)
    read = time.perf_counter() - start
    checksum = np.uint64(0)
    for batch in table.to_batches(max_chunksize=1_000_000):
        for name in ("user_id", "track_id"):
            checksum ^= np.bitwise_xor.reduce(hash_ids(batch.column(name).to_pandas()))
        pc.sum(batch.column("ms_played"))
        pc.min_max(batch.column("ts"))
    total = time.perf_counter() - start
    return {"read_seconds": round(read, 3), "pass_seconds": round(total - read, 3),
            "seconds": round(total, 3), "rows": table.num_rows}


def run_spark(log: Path, tracks_run: Path) -> dict:
    """Spark: log broadcast-joined with the tracks, per-user sums by groupBy, MLlib KMeans."""
    if reason := spark_missing():
        return {"status": "not available", "reason": reason}
    from pyspark.ml.clustering import KMeans
    from pyspark.ml.feature import StandardScaler, VectorAssembler
    from pyspark.sql import SparkSession
    from pyspark.sql import functions as F

    from sonicatlas.contract import FEATURES

    start = time.perf_counter()
    spark = (SparkSession.builder.master("local[2]").appName("sonicatlas-listeners-peer")
             .config("spark.driver.memory", "8g").config("spark.ui.enabled", "false")
             .config("spark.sql.shuffle.partitions", "4").getOrCreate())
    try:
        manifest = json.loads((tracks_run / "manifest.json").read_text())
        catalog = spark.read.parquet(manifest["input"]["url"]).select("track_id", *FEATURES)
        clusters = spark.read.parquet(str(tracks_run / "assignments")) \
            .select("track_id", "cluster")
        tracks = catalog.join(clusters, "track_id")
        listens = spark.read.parquet(str(log / "listens"))
        joined = listens.join(F.broadcast(tracks), "track_id", "left")
        known = joined.where(F.col("cluster").isNotNull())
        per_user = known.groupBy("user_id").agg(
            F.log1p(F.count("*")).alias("log_plays"),
            F.countDistinct(F.to_date("ts")).alias("active_days"),
            *(F.avg(f).alias(f"mean_{f}") for f in FEATURES),
            *(F.avg((F.col("cluster") == c).cast("double")).alias(f"share_cluster_{c}")
              for c in range(K)),
            *(F.avg((F.hour("ts") == h).cast("double")).alias(f"hour_{h}") for h in range(24)))
        columns = [c for c in per_user.columns if c != "user_id"]
        vectors = VectorAssembler(inputCols=columns, outputCol="raw").transform(per_user)
        scaled = StandardScaler(inputCol="raw", outputCol="x", withMean=True) \
            .fit(vectors).transform(vectors).cache()
        users = scaled.count()
        unknown = joined.where(F.col("cluster").isNull()).count()
        prepared = time.perf_counter() - start
        KMeans(k=K, seed=0, featuresCol="x").fit(scaled)
        total = time.perf_counter() - start
    finally:
        spark.stop()
    return {"status": "ran", "seconds": round(total, 2), "join + groupBy + scale":
            round(prepared, 2), "users": users, "unknown_listens": unknown}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listens", type=int, nargs="+", required=True)
    parser.add_argument("--tracks", type=int, default=1_000_000)
    parser.add_argument("--rows-per-partition", type=int, default=250_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--checkout", action="append", default=[], metavar="NAME=PATH",
                        help="also run the job from another checkout")
    parser.add_argument("--peers", nargs="*", default=["floor", "spark"])
    parser.add_argument("--data-dir", type=Path, default=Path("/tmp/sonicatlas-bench"))
    args = parser.parse_args(argv)
    checkouts = {"this": HERE, **{name: Path(path).resolve() for name, path in
                                  (c.split("=", 1) for c in args.checkout)}}
    args.data_dir.mkdir(parents=True, exist_ok=True)
    catalog = ensure_catalog(args.data_dir, args.tracks)
    tracks_run = ensure_tracks_run(args.data_dir, catalog, args.tracks)
    for n in args.listens:
        log = ensure_log(args.data_dir, catalog, n, args.rows_per_partition)
        runs = {name: [] for name in checkouts}
        with tempfile.TemporaryDirectory(dir=args.data_dir) as work:
            for r in range(args.repeat):
                names = list(checkouts)
                for name in names[r % len(names):] + names[:r % len(names)]:
                    runs[name].append(run_job(checkouts[name], log, tracks_run, Path(work)))
                    print(f"{n:,} listens, {name}: {runs[name][-1]['wall_seconds']} s, "
                          f"{runs[name][-1]['peak_rss_gib']} GiB", flush=True)
        medians = {name: {
            "wall_seconds": statistics.median(x["wall_seconds"] for x in results),
            "peak_rss_gib": statistics.median(x["peak_rss_gib"] for x in results),
            "stage_seconds": {stage: round(statistics.median(x["stage_seconds"][stage]
                                                             for x in results), 2)
                              for stage in results[0]["stage_seconds"]}}
            for name, results in runs.items()}
        peers = {}
        if "floor" in args.peers:
            peers["floor"] = run_floor(log)
        if "spark" in args.peers:
            peers["spark"] = run_spark(log, tracks_run)
        record = {"date": dt.datetime.now().isoformat(timespec="seconds"), "listens": n,
                  "users": max(n // 100, 1), "tracks": args.tracks,
                  "rows_per_partition": args.rows_per_partition, "repeat": args.repeat,
                  "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
                  "machine": machine(), "code": code_version(),
                  "checkouts": {name: str(path) for name, path in checkouts.items()},
                  "medians": medians, "peers": peers, "runs": runs}
        RESULTS.mkdir(exist_ok=True)
        path = RESULTS / f"{dt.date.today().isoformat()}-listeners-{n}.json"
        path.write_text(json.dumps(record, indent=2) + "\n")
        print(json.dumps({"medians": medians, "peers": peers}, indent=2))
        print(f"-> {path}")


if __name__ == "__main__":
    main()
