"""Passes over persisted frames on a real LocalCluster: the held partitions read directly, and
the summaries' single scan combining as it goes; each result against pandas."""

import time

import dask
import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest
from distributed import Client, LocalCluster, get_task_stream, get_worker

from sonicatlas import persisted
from sonicatlas.summaries.scan import Reduction, Regroup, scan


@pytest.fixture(scope="module")
def client():
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                      dashboard_address="127.0.0.1:0") as cluster, Client(cluster) as client:
        yield client


@pytest.fixture(scope="module")
def frame():
    rng = np.random.default_rng(3)
    n = 30_000
    return pd.DataFrame({"key": rng.integers(0, 40, n), "x": rng.normal(size=n),
                         "_pos": np.arange(n)})


def _keys_holding(part: pd.DataFrame) -> int:
    """How many keys of this worker's data are this very object (none off the workers)."""
    try:
        data = get_worker().data
    except ValueError:
        return 0
    return sum(1 for key in list(data.keys()) if data.get(key) is part)


def test_map_over_persisted_and_lazy_frames_equals_pandas(client, frame):
    held = dd.from_pandas(frame, npartitions=6).persist()
    doubled = dd.from_pandas(frame[["x"]] * 2, npartitions=6)  # not persisted

    def join(a: pd.DataFrame, b: pd.DataFrame) -> pd.DataFrame:
        return a.assign(y=b["x"].to_numpy(), held_under=_keys_holding(a))

    meta = join(frame.iloc[:0], frame[["x"]].iloc[:0])
    out = persisted.map_partitions(join, held, doubled, meta=meta)
    assert out.npartitions == 6
    got = out.compute()
    pd.testing.assert_frame_equal(got.drop(columns="held_under"),
                                  frame.assign(y=frame["x"] * 2))
    # each persisted partition reached its task as the held object, under its one key
    assert (got["held_under"] == 1).all()


def test_partitions_of_a_lazy_frame_are_its_delayed_tasks(client, frame):
    lazy = dd.from_pandas(frame, npartitions=3).map_partitions(lambda p: p.assign(z=1))
    parts = persisted.partitions(lazy)
    assert len(parts) == 3
    pd.testing.assert_frame_equal(pd.concat(dask.compute(*parts)), frame.assign(z=1))


def test_frames_of_different_lengths_are_refused(client, frame):
    with pytest.raises(ValueError, match="different numbers of partitions"):
        persisted.map_partitions(lambda a, b: a, dd.from_pandas(frame, npartitions=2),
                                 dd.from_pandas(frame, npartitions=3), meta=frame.iloc[:0])


def _reductions(buckets: int) -> dict:
    def counts(part, number, n):
        sums = part.groupby("key")["x"].agg(["sum", "count"])
        return [sums[sums.index % n == b] for b in range(n)]

    return {
        "total": Reduction(partial=lambda part, number: part["x"].sum(),
                           combine=lambda a, b: a + b),
        "sum_sq": Reduction(partial=lambda part, number: float((part["x"] ** 2).sum()),
                            combine=lambda a, b: a + b),
        "by_key": Regroup(partial=counts,
                          combine=lambda pieces: pd.concat(pieces).groupby(level=0).sum(),
                          meta=pd.DataFrame({"sum": [], "count": []}), buckets=buckets),
    }


def test_scan_with_a_regroup_over_many_partitions_equals_pandas(client, frame):
    held = dd.from_pandas(frame, npartitions=29).persist()  # runs of 8: 8, 8, 8, 5
    done = scan(held, _reductions(buckets=3))
    np.testing.assert_allclose(done["total"], frame["x"].sum(), rtol=1e-12)
    np.testing.assert_allclose(done["sum_sq"], (frame["x"] ** 2).sum(), rtol=1e-12)
    by_key = done["by_key"].compute().sort_index()
    expected = frame.groupby("key")["x"].agg(["sum", "count"])
    np.testing.assert_allclose(by_key["sum"], expected["sum"], rtol=1e-12)
    np.testing.assert_array_equal(by_key["count"], expected["count"])
    # the same combining order as one graph on dask's own scheduler: equal to the last bit
    with dask.config.set(scheduler="sync"):
        alone = scan(dd.from_pandas(frame, npartitions=29), _reductions(buckets=3))
    assert done["total"] == alone["total"] and done["sum_sq"] == alone["sum_sq"]


def _slow_join(rows: pd.DataFrame, read: pd.DataFrame) -> pd.DataFrame:
    time.sleep(0.02)  # a partition's load takes time, so the order the workers take matters
    return rows.assign(y=read["x"].to_numpy())


def test_scan_combines_each_run_before_most_partitions_load(client, frame):
    # as in the job: held rows joined with columns read again (tasks the scheduler queues)
    held = dd.from_pandas(frame, npartitions=64).persist()
    read = dd.from_pandas(frame[["x"]], npartitions=64)
    joined = persisted.map_partitions(_slow_join, held, read,
                                      meta=_slow_join(frame.iloc[:0], frame[["x"]].iloc[:0]))
    with get_task_stream(client) as stream:
        done = scan(joined, _reductions(buckets=16))
    np.testing.assert_allclose(done["total"], frame["x"].sum(), rtol=1e-12)
    started = {"combine": [], "partial": []}
    for task in stream.data:
        key = str(task["key"])
        kind = ("combine" if "_combine_all" in key else
                "partial" if "total-partial" in key else None)
        if kind:
            started[kind].append(min(s["start"] for s in task["startstops"]
                                     if s["action"] == "compute"))
    assert len(started["partial"]) == 64
    # the first run's partials are combined while most partitions are still to come, so
    # the partials do not all wait in memory until the end
    assert min(started["combine"]) < sorted(started["partial"])[32]
