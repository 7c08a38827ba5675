"""What each map projection adds to a cluster-tracks run, beside a default run (PCA only).

    python bench/run_projections.py --rows 1_000_000 [--sample 100_000] \
        [--projections pca ica umap tsne] [--data-dir /tmp/sonicatlas-bench] [--label NAME]

Makes once (cached in --data-dir) a synthetic catalog of --rows tracks in partitions of
125k rows, then runs ``sonicatlas run cluster-tracks`` (k=6, two worker processes) in a child
process once with the defaults (``projections: [pca]``) and once per other projection
(``projections: [pca, <name>]``, ``projection_sample: --sample``), in that order, recording
the wall time, every stage's seconds and the peak summed RSS. Writes
bench/results/<date>-projections-<rows>[-<label>].json after each run. See
docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.dataset as pds
from run_bench import PeakRSS, code_version, machine  # bench/ is on sys.path

RESULTS = Path(__file__).parent / "results"
HERE = Path(__file__).resolve().parents[1]
PARTITION_ROWS = 125_000


def ensure_catalog(data_dir: Path, rows: int) -> Path:
    """A synthetic catalog of ``rows`` tracks in partitions of 125k rows, made once."""
    path = data_dir / f"tracks-{rows}-p{PARTITION_ROWS}"
    if path.exists() and pds.dataset(path, format="parquet").count_rows() == rows:
        return path
    from sonicatlas.synthetic.tracks import generate_tracks

    generate_tracks(str(path), rows=rows, seed=0, rows_per_partition=PARTITION_ROWS,
                    overwrite=True)
    return path


def run_job(catalog: Path, out: Path, projections: list[str], sample: int) -> dict:
    command = [sys.executable, "-m", "sonicatlas.cli", "run", "cluster-tracks",
               "--set", f"input={catalog}", "--set", "k=6", "--set", "cluster.n_workers=2",
               "--set", "cluster.dashboard_address=127.0.0.1:0", "--out", str(out),
               "--overwrite"]
    if projections != ["pca"]:
        command += ["--set", f"projections=[{', '.join(projections)}]",
                    "--set", f"projection_sample={sample}"]
    env = {**os.environ, "PYTHONPATH": f"{HERE / 'lib'}{os.pathsep}{HERE}"}
    start = time.perf_counter()
    with PeakRSS() as rss:
        subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    manifest = json.loads((out / "manifest.json").read_text())
    return {"projections": projections, "wall_seconds": round(wall, 2),
            "stage_seconds": manifest["seconds"], "peak_rss_gib": rss.gib,
            "rows_accepted": manifest["rows"]["rows_accepted"], "command": " ".join(command)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--sample", type=int, default=100_000)
    parser.add_argument("--projections", nargs="+", default=["pca", "ica", "umap", "tsne"])
    parser.add_argument("--data-dir", type=Path, default=Path("/tmp/sonicatlas-bench"))
    parser.add_argument("--label", default="",
                        help="appended to the record's name, so that a run of some projections "
                             "keeps an earlier record of the others")
    args = parser.parse_args()
    catalog = ensure_catalog(args.data_dir, args.rows)
    record = {"when": dt.datetime.now(dt.UTC).isoformat(), "machine": machine(),
              "code": code_version(), "rows": args.rows, "projection_sample": args.sample,
              "catalog": str(catalog), "runs": []}
    label = f"-{args.label}" if args.label else ""
    out_file = RESULTS / f"{dt.date.today()}-projections-{args.rows}{label}.json"
    for name in args.projections:
        projections = ["pca"] if name == "pca" else ["pca", name]
        result = run_job(catalog, args.data_dir / f"projections-run-{name}", projections,
                         args.sample)
        record["runs"].append(result)
        stages = result["stage_seconds"]
        print(json.dumps({k: result[k] for k in ("projections", "wall_seconds")}
                         | {k: stages[k] for k in stages if k.startswith("projections")}),
              flush=True)
        out_file.write_text(json.dumps(record, indent=2) + "\n")
    print(f"written to {out_file}")


if __name__ == "__main__":
    main()
