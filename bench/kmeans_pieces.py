"""Time the pieces of the job's KMeans on a scaled catalog persisted on a LocalCluster.

    python bench/kmeans_pieces.py --catalog /tmp/sonicatlas-bench/tracks-10000000

Prints seconds for: the k-means++ restarts on the sample, costing them on a ~1M-row second
sample, the first Lloyd pass, then Lloyd passes and plain passes (the floor) alternated
(medians and the paired ratio), and the whole fit. See docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import time
import warnings

import dask
import numpy as np
from distributed import Client, LocalCluster
from sklearn.cluster import KMeans as SklearnKMeans

from sonicatlas.contract import FEATURES
from sonicatlas.estimators.arrays import sample_rows
from sonicatlas.estimators.kmeans import KMeans
from sonicatlas.estimators.lloyd import candidate_costs, lloyd_partial, sample_block
from sonicatlas.io import catalog
from sonicatlas.io import checks as clean
from sonicatlas.modeling import features


def seconds(work) -> float:
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


def timed(name: str, work):
    start = time.perf_counter()
    result = work()
    print(f"{name:34s} {time.perf_counter() - start:6.2f}", flush=True)
    return result


def scaled_matrix(path: str, client: Client):
    """The job's own read, validation and scaling of the catalog, persisted."""
    tracks = catalog.open_catalog(path, {}, FEATURES, client)
    checked = clean.check_rows(catalog.read_catalog(tracks, ()), FEATURES).persist()
    accepted, _ = clean.split(checked)
    return features.standardize(accepted, FEATURES)[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--catalog", default="/tmp/sonicatlas-bench/tracks-10000000")
    parser.add_argument("--k", type=int, default=6)
    parser.add_argument("--repeat", type=int, default=9, help="Lloyd and plain passes, alternated")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    with LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address="127.0.0.1:0") as lc, \
            Client(lc) as client:
        S = scaled_matrix(args.catalog, client)
        blocks = S.to_delayed().ravel()
        sample = timed("sample (100k rows)", lambda: sample_rows(S, 100_000, 0))
        candidates = timed("10 k-means++ restarts on sample", lambda: np.stack([
            SklearnKMeans(args.k, n_init=1, random_state=i).fit(sample).cluster_centers_
            for i in range(10)]))
        fraction = min(1.0, 1_000_000 / S.shape[0])
        timed("cost restarts on ~1M rows", lambda: dask.compute(*(
            dask.delayed(candidate_costs)(dask.delayed(sample_block)(b, 1, i, fraction),
                                           candidates)
            for i, b in enumerate(blocks))))
        centers = candidates[0]

        def lloyd():
            return dask.compute(*(dask.delayed(lloyd_partial)(b, centers) for b in blocks))

        timed("Lloyd pass (first: numba cache load)", lloyd)
        # Alternated, so both see the same machine; medians and the paired ratio.
        pairs = []
        for _ in range(args.repeat):
            pairs.append((seconds(lloyd), seconds(lambda: S.sum().compute())))
        lloyds, plains = np.array(pairs).T
        print(f"Lloyd pass, median of {args.repeat}        {np.median(lloyds):6.3f}")
        print(f"plain pass (sum), median          {np.median(plains):6.3f}")
        print(f"Lloyd / plain, median of pairs    {np.median(lloyds / plains):6.2f}")
        fit = timed("whole fit", lambda: KMeans(args.k, random_state=0).fit(S))
        print(f"iterations {fit.n_iter_}, cost {fit.inertia_:,.1f}")


if __name__ == "__main__":
    main()
