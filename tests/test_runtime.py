"""Connecting: the LocalCluster the jobs start, and how it places the input's partitions."""

import collections
import math

import dask
import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest
from distributed import futures_of, wait

from sonicatlas.config import ClusterConfig
from sonicatlas.runtime import connect

SETTING = "distributed.scheduler.worker-saturation"


def _saturation(dask_scheduler) -> float:
    return dask_scheduler.WORKER_SATURATION


@pytest.mark.parametrize("value, expected", [("inf", math.inf), (1.1, 1.1)])
def test_local_cluster_scheduler_gets_the_configured_saturation_and_only_it(value, expected):
    before = dask.config.get(SETTING)
    config = ClusterConfig(n_workers=1, dashboard_address="127.0.0.1:0", worker_saturation=value)
    with connect(config, echo=lambda _: None) as client:
        assert client.run_on_scheduler(_saturation) == expected
        assert dask.config.get(SETTING) == before  # set for that scheduler, not globally


def test_default_local_cluster_reads_ten_files_five_on_each_of_two_workers(tmp_path):
    # dask's queuing hands each read to whichever worker frees first, so one worker can end
    # up with 6 of 10 partitions and do 20 % more of every later per-partition task
    for i in range(10):
        pd.DataFrame({"x": np.arange(1000) + 1000 * i}).to_parquet(tmp_path / f"part-{i}.parquet")
    config = ClusterConfig(n_workers=2, dashboard_address="127.0.0.1:0")
    with connect(config, echo=lambda _: None) as client:
        # one partition per file, as the catalog reader makes them
        frame = dd.from_map(pd.read_parquet, sorted(tmp_path.glob("*.parquet"))).persist()
        wait(frame)
        placed = collections.Counter(
            next(iter(holders)) for holders in client.who_has(futures_of(frame)).values())
        assert sorted(placed.values()) == [5, 5]
        assert int(frame["x"].sum().compute()) == sum(range(10_000))
