"""Connecting: the LocalCluster the jobs start, and how it places the input's partitions."""

import collections
import math
import sys

import dask
import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest
from distributed import futures_of, wait

from sonicatlas.config import ClusterConfig
from sonicatlas.runtime import connect, free_page_reporting

SETTING = "distributed.scheduler.worker-saturation"


def _saturation(dask_scheduler) -> float:
    return dask_scheduler.WORKER_SATURATION


@pytest.mark.slow
@pytest.mark.parametrize("value, expected", [("inf", math.inf), (1.1, 1.1)])
def test_local_cluster_scheduler_gets_the_configured_saturation_and_only_it(value, expected):
    before = dask.config.get(SETTING)
    config = ClusterConfig(n_workers=1, dashboard_address="127.0.0.1:0", worker_saturation=value)
    with connect(config, echo=lambda _: None) as client:
        assert client.run_on_scheduler(_saturation) == expected
        assert dask.config.get(SETTING) == before  # set for that scheduler, not globally


@pytest.mark.slow
def test_saturation_inf_reads_ten_files_five_on_each_of_two_workers(tmp_path):
    # inf hands every read out up front, evenly; dask's queuing (the default, 1.1) hands each
    # to whichever worker frees first, so one worker can end up with 6 of 10 partitions
    for i in range(10):
        pd.DataFrame({"x": np.arange(1000) + 1000 * i}).to_parquet(tmp_path / f"part-{i}.parquet")
    config = ClusterConfig(n_workers=2, dashboard_address="127.0.0.1:0", worker_saturation="inf")
    with connect(config, echo=lambda _: None) as client:
        # one partition per file, as the catalog reader makes them
        frame = dd.from_map(pd.read_parquet, sorted(tmp_path.glob("*.parquet"))).persist()
        wait(frame)
        placed = collections.Counter(
            next(iter(holders)) for holders in client.who_has(futures_of(frame)).values())
        assert sorted(placed.values()) == [5, 5]
        assert int(frame["x"].sum().compute()) == sum(range(10_000))


def _huge_pages_allowed() -> str:
    for line in open("/proc/self/status"):
        if line.startswith("THP_enabled:"):
            return line.split()[1]
    pytest.skip("this kernel does not report THP_enabled")


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl is Linux's")
@pytest.mark.parametrize("setting, expected", [(False, "0"), (True, "1")])
def test_local_cluster_workers_get_the_huge_pages_setting(setting, expected):
    before = _huge_pages_allowed()
    config = ClusterConfig(n_workers=2, dashboard_address="127.0.0.1:0", huge_pages=setting)
    lines = []
    with connect(config, echo=lines.append) as client:
        assert set(client.run(_huge_pages_allowed).values()) == {expected}
        assert ("huge pages off" in lines[0]) is (not setting)
    assert _huge_pages_allowed() == before  # this process keeps its own


@pytest.mark.parametrize("bits, expected", [
    ("0110010100000000000000000000000010000000", True),  # this machine's: bit 5 set
    ("0110000100000000000000000000000010000000", False),
    (None, False),  # no balloon device at all
])
def test_free_page_reporting_reads_the_balloon_devices_feature_bit(tmp_path, bits, expected):
    if bits is not None:
        device = tmp_path / "bus/virtio/drivers/virtio_balloon/virtio0"
        device.mkdir(parents=True)
        (device / "features").write_text(bits + "\n")
    assert free_page_reporting(str(tmp_path)) is expected
