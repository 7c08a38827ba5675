"""The cluster-tracks job's "maps" stage, the shading before and after, side by side.

    python bench/run_maps.py --rows 1_000_000 --data-dir /tmp/sonicatlas-bench --repeat 5 \
        [--run RUN] [--before a6cde1d]

The map bins are computed once from a cluster-tracks run (``--run``, only read; by default the
run of the cached N-track catalog in --data-dir, made on first use), with the job's grid rule
and binning. Then each timed repeat draws and writes every map of the run exactly as the job's
"maps" stage does (``run_maps.map_images``, then ``maps.save_png`` per image), in a fresh
process as the job does (first-call costs included; numba already started, as in the job's
client), once with ``sonicatlas.visual.maps`` as it
was at ``--before`` and once as it is now, alternating. The first pair's PNGs are decoded and
compared pixel for pixel. The same again for the maps of the run's first --sparse-rows tracks
(a sparse map, whose points are spread). Prints medians, and the seconds numba spent compiling
inside the stage, and writes bench/results/<date>-maps-<N>.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import json
import pickle
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from run_bench import code_version, ensure_catalog, machine  # this directory is on sys.path
from run_discover import ensure_run

RESULTS = Path(__file__).parent / "results"
ROOT = Path(__file__).resolve().parents[1]
MAPS = "lib/sonicatlas/visual/maps.py"


def load_bins(run: Path, rows: int | None = None) -> dict:
    """Everything the maps stage receives, from a finished run's files (its first ``rows``
    tracks only, if given)."""
    import dask.dataframe as dd
    import pandas as pd

    from sonicatlas.config import MapConfig
    from sonicatlas.runs.run_maps import map_grid
    from sonicatlas.visual.raster import bin_points

    tracks = pd.read_parquet(run / "assignments", columns=["track_id", "cluster", "pc1", "pc2"])
    features = pd.read_parquet(run / "query")
    points = tracks.merge(features, on="track_id", how="left", validate="one_to_one")
    names = [c for c in features.columns if c != "track_id"]
    profiles = pd.read_parquet(run / "summary" / "cluster_profiles").sort_values("cluster")
    if rows is not None:
        points = points.head(rows)
        sizes = points["cluster"].value_counts().reindex(profiles["cluster"], fill_value=0)
        profiles = profiles.assign(size=sizes.to_numpy())
    grid = map_grid(dd.from_pandas(points[["pc1", "pc2"]], npartitions=8), MapConfig())
    start = time.perf_counter()
    bins = bin_points(points, grid, n_clusters=len(profiles), features=names)
    binning = time.perf_counter() - start
    return {"bins": bins, "grid": grid, "names": profiles["name"].tolist(),
            "profiles": profiles, "features": tuple(names),
            "pca": pd.read_parquet(run / "summary" / "pca"), "binning_s": binning,
            "occupied_pixels": int((bins["count"] > 0).sum())}


def child(variant: str, inputs: Path, out: Path, before_source: Path | None) -> None:
    """One maps stage in this fresh process; prints its seconds as JSON."""
    if variant == "before":  # the module as it was, under its own name, before anyone imports it
        import sonicatlas.visual

        spec = importlib.util.spec_from_file_location("sonicatlas.visual.maps", before_source)
        module = importlib.util.module_from_spec(spec)
        sys.modules["sonicatlas.visual.maps"] = module
        spec.loader.exec_module(module)
        sonicatlas.visual.maps = module
    from sonicatlas.runs import run_maps
    from sonicatlas.visual import maps

    assert (variant == "before") == (maps.__file__ == str(before_source)), maps.__file__
    stage = pickle.loads(inputs.read_bytes())
    # the job's client has run numba code before this stage (numba's one-off start is not
    # the maps' cost): a tiny binning does the same here
    import numba.core.event as event
    import pandas as pd

    from sonicatlas.visual.raster import bin_points

    bin_points(pd.DataFrame({"pc1": [0.0], "pc2": [0.0]}), stage["grid"])
    compiles = Compiles()
    start = time.perf_counter()
    with event.install_listener("numba:compile", compiles.listener):
        images = run_maps.map_images(stage["bins"], stage["grid"], stage["names"],
                                     stage["profiles"], stage["features"], stage["pca"])
    drawn = time.perf_counter()
    for name, image in images.items():
        maps.save_png(image, str(out / name))
    done = time.perf_counter()
    print(json.dumps({"render_s": drawn - start, "png_s": done - drawn, "stage_s": done - start,
                      "numba_compile_s": compiles.seconds,
                      "png_bytes": sum(p.stat().st_size for p in out.rglob("*.png"))}))


class Compiles:
    """Seconds of numba compiles (top level only), as a numba event listener."""

    def __init__(self):
        import numba.core.event as event

        class Listener(event.Listener):
            def on_start(inner, _):
                self.depth += 1
                if self.depth == 1:
                    self.started = time.perf_counter()

            def on_end(inner, _):
                self.depth -= 1
                if self.depth == 0:
                    self.seconds += time.perf_counter() - self.started

        self.seconds, self.depth, self.listener = 0.0, 0, Listener()


def run_child(variant: str, inputs: Path, out: Path, before: Path) -> dict:
    result = subprocess.run([sys.executable, __file__, "--child", variant, str(inputs), str(out),
                             str(before)], capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def same_pixels(a: Path, b: Path) -> dict:
    """Largest difference of any channel of any pixel, over every PNG of both directories."""
    from PIL import Image

    names = sorted(p.relative_to(a) for p in a.rglob("*.png"))
    assert names == sorted(p.relative_to(b) for p in b.rglob("*.png")), "different maps"
    worst = 0
    for name in names:
        x = np.asarray(Image.open(a / name).convert("RGB"), dtype=np.int16)
        y = np.asarray(Image.open(b / name).convert("RGB"), dtype=np.int16)
        assert x.shape == y.shape, name
        worst = max(worst, int(np.abs(x - y).max()))
    return {"images": len(names), "max_abs_difference": worst}


def compare(name: str, stage: dict, work: Path, before: Path, repeat: int) -> dict:
    """Alternate the stage before and after, each in a fresh process; medians and pixels."""
    inputs = work / f"{name}.pickle"
    inputs.write_bytes(pickle.dumps({k: v for k, v in stage.items()
                                     if k not in ("binning_s", "occupied_pixels")}))
    print(f"{name}: {stage['occupied_pixels']:,} occupied pixels, binned in "
          f"{stage['binning_s']:.2f} s (one process)")
    runs = {"before": [], "after": []}
    for i in range(repeat):
        for variant in ("before", "after") if i % 2 == 0 else ("after", "before"):
            out = work / f"{name}-{variant}-{i}"
            out.mkdir()
            runs[variant].append(run_child(variant, inputs, out, before))
            print(f"{name} {i} {variant:6s} " + " ".join(
                f"{k} {v:.3f}" if k.endswith("_s") else f"{k} {v:,}"
                for k, v in runs[variant][-1].items()))
    medians = {v: {k: round(statistics.median(r[k] for r in rs), 3) for k in rs[0]}
               for v, rs in runs.items()}
    ratio = round(medians["after"]["stage_s"] / medians["before"]["stage_s"], 3)
    paired = round(statistics.median(a["stage_s"] / b["stage_s"]
                                     for a, b in zip(runs["after"], runs["before"],
                                                     strict=True)), 3)
    pixels = same_pixels(work / f"{name}-before-0", work / f"{name}-after-0")
    print(name, json.dumps(medians), f"after/before: of the medians {ratio}, paired {paired}",
          pixels)
    return {"occupied_pixels": stage["occupied_pixels"],
            "binning_one_process_s": round(stage["binning_s"], 3), "runs": runs,
            "medians": medians, "stage_ratio_after_before": ratio,
            "stage_ratio_paired_median": paired, "pixels": pixels}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--sparse-rows", type=int, default=2_000,
                        help="also the maps of the run's first tracks only (0: not)")
    parser.add_argument("--data-dir", type=Path, default=Path("/tmp/sonicatlas-bench"))
    parser.add_argument("--run", type=Path, help="a finished cluster-tracks run (only read)")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--before", default="a6cde1d", help="git ref of the maps module before")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        variant, inputs, out, before = args.child
        return child(variant, Path(inputs), Path(out), Path(before))

    run = args.run
    if run is None:
        run, _ = ensure_run(args.data_dir, ensure_catalog(args.data_dir, args.rows), args.rows,
                            6)
    work = Path(tempfile.mkdtemp(prefix="maps-bench-"))
    before = work / "maps_before.py"
    before.write_text(subprocess.run(["git", "-C", str(ROOT), "show", f"{args.before}:{MAPS}"],
                                     capture_output=True, text=True, check=True).stdout)
    scenarios = {"all": compare("all", load_bins(run), work, before, args.repeat)}
    if args.sparse_rows:
        scenarios["sparse"] = compare("sparse", load_bins(run, args.sparse_rows), work, before,
                                      args.repeat)
        scenarios["sparse"]["rows"] = args.sparse_rows

    record = {"benchmark": "maps stage", "date": dt.date.today().isoformat(),
              "rows": args.rows, "run": str(run), "before": args.before,
              "command": " ".join(sys.argv), "machine": machine(), "code": code_version(),
              **scenarios}
    shutil.rmtree(work)  # the PNGs of every repeat: hundreds of MB
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{record['date']}-maps-{args.rows}.json"
    path.write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
