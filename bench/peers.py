"""Peer pipelines for bench/run_bench.py: dask-ml and Spark MLlib, each with its own defaults.

Each peer reads the same Parquet catalog, applies the reference pipeline's validity rules
(finite, inside VALID_RANGES, non-null and unique ``track_id``), standardises the 10 features,
fits a PCA and a KMeans(k), and returns::

    {"seconds": {"start session": s, "read + scale (+cache)": s, "pca": s, "kmeans": s,
                 "stop session": s, "total": s},
     "inertia": float, "n_iter": int, "rows": int, "peak_rss_gib": float, ...}

or ``{"skipped": reason}``. "total" is the sum of the stages. "inertia" is the exact squared
cost of the returned centers, computed after the stages (``cost_seconds``): neither peer reports
it (dask-ml's ``inertia_`` is not squared; Spark's ``trainingCost`` is against the centers the
last iteration started from).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

import numpy as np

from sonicatlas.contract import FEATURES, TRACK_ID, VALID_RANGES

PEER_STAGES = ("read + scale (+cache)", "pca", "kmeans")  # the job's compared stages' peers
SPARK_CORES = 2  # local[2]: the job's 2 workers x 1 thread


class _Laps:
    """Seconds per named stage, each measured from the end of the previous one."""

    def __init__(self):
        self.seconds: dict[str, float] = {}
        self.t = time.perf_counter()

    def __call__(self, name: str) -> None:
        now = time.perf_counter()
        self.seconds[name], self.t = round(now - self.t, 3), now

    def restart(self) -> None:
        self.t = time.perf_counter()

    def total(self) -> dict[str, float]:
        return {**self.seconds, "total": round(sum(self.seconds.values()), 3)}


def run_dask_ml(path: Path, k: int, peak_rss: Callable[[], AbstractContextManager]) -> dict:
    """dask-ml with its defaults on a 2 x 1-thread LocalCluster.

    Parameters
    ----------
    path : Path
        The Parquet catalog.
    k : int
        Number of clusters.
    peak_rss : callable
        ``run_bench.PeakRSS`` (passed in: run_bench imports this module).

    Returns
    -------
    dict
        Stage seconds, exact squared cost of dask-ml's centers, n_iter, rows, peak RSS.
    """
    import dask.array as da
    import dask.dataframe as dd
    from dask_ml.cluster import KMeans
    from dask_ml.decomposition import PCA
    from dask_ml.preprocessing import StandardScaler
    from distributed import Client, LocalCluster, wait

    from sonicatlas.estimators.lloyd import nearest_centers

    laps = _Laps()
    with peak_rss() as rss:
        laps.restart()
        cluster = LocalCluster(n_workers=2, threads_per_worker=1, host="127.0.0.1",
                               dashboard_address=None)
        client = Client(cluster)
        laps("start session")
        try:
            frame = dd.read_parquet(str(path), columns=[TRACK_ID, *FEATURES])
            ok = frame[TRACK_ID].notnull()
            for name in FEATURES:  # abs() < inf: finite (NaN compares False); then the range
                col = frame[name].astype("float64")
                ok &= (col.abs() < np.inf) & VALID_RANGES[name].contains(col)
            # Filter, then drop repeated ids (as the job does; the synthetic catalogs have none).
            # Which copy survives the shuffle is dask's choice.
            frame = frame[ok].drop_duplicates(subset=[TRACK_ID])
            # Persist, then read the chunk sizes off the persisted chunks: lengths=True up front
            # would run the read + shuffle once more (the scaler's fit and persist once each).
            X = frame[list(FEATURES)].astype("float64").to_dask_array().persist()
            X.compute_chunk_sizes()
            Xs = StandardScaler().fit_transform(X).persist()
            wait(Xs)
            del X, frame
            laps("read + scale (+cache)")
            PCA().fit(Xs)
            laps("pca")
            km = KMeans(n_clusters=k, random_state=0).fit(Xs)
            laps("kmeans")
            # dask-ml's inertia_ is not the squared cost: cost its centers exactly, blockwise.
            start = time.perf_counter()
            centers = np.asarray(km.cluster_centers_, dtype=np.float64)
            sq = da.map_blocks(lambda b: nearest_centers(b, centers)[1], Xs, drop_axis=1,
                               dtype=np.float64)
            cost, rows = float(sq.sum().compute()), Xs.shape[0]
            cost_seconds = round(time.perf_counter() - start, 3)
            laps.restart()
        finally:
            client.close()
            cluster.close()
        laps("stop session")
    return {"seconds": laps.total(), "inertia": cost, "n_iter": int(km.n_iter_),
            "rows": int(rows), "peak_rss_gib": rss.gib, "cost_seconds": cost_seconds,
            "cost_source": "nearest_centers on dask-ml's cluster_centers_"}


def spark_missing() -> str | None:
    """Why the Spark peer cannot run here, or None."""
    if importlib.util.find_spec("pyspark") is None:
        return "pyspark is not installed (pip install -e '.[bench]')"
    if shutil.which("java") is None:
        return "no java on PATH (pyspark needs Java 17+)"
    return None


def run_spark(path: Path, k: int, peak_rss: Callable[[], AbstractContextManager]) -> dict:
    """Spark MLlib with its defaults, ``local[2]``, 8 GiB driver, 4 shuffle partitions.

    Parameters
    ----------
    path : Path
        The Parquet catalog.
    k : int
        Number of clusters.
    peak_rss : callable
        ``run_bench.PeakRSS``; the driver JVM is a child process, so it is counted.

    Returns
    -------
    dict
        Stage seconds, exact squared cost of the returned centers, ``summary.numIter``,
        ``summary.trainingCost``, rows, peak RSS; or ``{"skipped": reason}`` without pyspark
        or java.
    """
    if reason := spark_missing():
        return {"skipped": reason}
    from pyspark import SparkContext
    from pyspark.ml.clustering import KMeans
    from pyspark.ml.feature import PCA, StandardScaler, VectorAssembler
    from pyspark.ml.functions import vector_to_array
    from pyspark.sql import SparkSession
    from pyspark.sql import functions as F

    laps = _Laps()
    with peak_rss() as rss:
        laps.restart()
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")  # else it warns and uses eth0
        spark = (SparkSession.builder.master(f"local[{SPARK_CORES}]").appName("sonicatlas-peer")
                 .config("spark.driver.memory", "8g")  # 10M rows cached twice, briefly
                 .config("spark.driver.host", "127.0.0.1")
                 .config("spark.driver.bindAddress", "127.0.0.1")
                 .config("spark.ui.enabled", "false")
                 .config("spark.ui.showConsoleProgress", "false")
                 # The one non-default: the 200 shuffle partitions meant for a cluster make the
                 # cached rows 200 tiny partitions, so every KMeans pass runs 200 tasks; AQE may
                 # not coalesce a cached plan's partitions.
                 .config("spark.sql.shuffle.partitions", str(2 * SPARK_CORES))
                 .getOrCreate())
        spark.sparkContext.setLogLevel("ERROR")
        laps("start session")
        try:
            frame = spark.read.parquet(str(path)).select(TRACK_ID, *FEATURES)
            ok = F.col(TRACK_ID).isNotNull()
            for name in FEATURES:
                r, col = VALID_RANGES[name], F.col(name).cast("double")
                # Spark orders NaN above +inf and null compares to null: test both explicitly.
                ok &= col.isNotNull() & ~F.isnan(col) & (F.abs(col) < float("inf"))
                ok &= (col >= r.low) if r.low_inclusive else (col > r.low)
                ok &= (col <= r.high) if r.high_inclusive else (col < r.high)
            assembler = VectorAssembler(inputCols=list(FEATURES), outputCol="raw")
            raw = assembler.transform(frame.where(ok).dropDuplicates([TRACK_ID])).select("raw")
            # Cache the validated rows first: the scaler's fit and the scaled cache would
            # otherwise each read the Parquet files and shuffle the ids again.
            raw.cache().count()
            scaler = StandardScaler(inputCol="raw", outputCol="x", withMean=True,
                                    withStd=True).fit(raw)
            scaled = scaler.transform(raw).select("x").cache()
            rows = scaled.count()
            raw.unpersist()
            laps("read + scale (+cache)")
            PCA(k=len(FEATURES), inputCol="x").fit(scaled)
            laps("pca")
            model = KMeans(k=k, seed=0, featuresCol="x").fit(scaled)
            laps("kmeans")
            training_cost, n_iter = model.summary.trainingCost, model.summary.numIter
            # trainingCost is summed against the centers of the last iteration's start, not the
            # centers it returns (7e-6 higher at 200k rows, maxIter reached): cost those exactly,
            # in one JVM-side pass (vector_to_array and the array lambdas run no Python).
            start = time.perf_counter()
            centers = F.array(*(F.array(*(F.lit(float(v)) for v in c))
                                for c in model.clusterCenters()))
            diff = F.zip_with(vector_to_array("x"), F.element_at(centers, F.col("prediction") + 1),
                              lambda u, v: (u - v) * (u - v))
            sq = F.aggregate(diff, F.lit(0.0), lambda acc, v: acc + v)
            cost = float(model.transform(scaled).select(F.sum(sq)).first()[0])
            cost_seconds = round(time.perf_counter() - start, 3)
            laps.restart()
        finally:
            gateway = SparkContext._gateway
            spark.stop()
            # stop() leaves the driver JVM running for a later session; end it so that its
            # heap is not counted in the next run's peak RSS. It exits when its stdin closes.
            if gateway is not None and getattr(gateway, "proc", None) is not None:
                gateway.shutdown()
                gateway.proc.stdin.close()
                gateway.proc.wait(timeout=60)
                SparkContext._gateway = SparkContext._jvm = None
        laps("stop session")
    return {"seconds": laps.total(), "inertia": cost, "n_iter": int(n_iter), "rows": int(rows),
            "peak_rss_gib": rss.gib, "cost_seconds": cost_seconds,
            "training_cost": float(training_cost),
            "cost_source": "squared distances to clusterCenters(), summed in Spark"}


PEERS: dict[str, Callable[..., dict]] = {"dask-ml": run_dask_ml, "spark": run_spark}
