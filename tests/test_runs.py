"""The run directory's background writes, on a real LocalCluster."""

from __future__ import annotations

import time

import dask.dataframe as dd
import fsspec
import numpy as np
import pandas as pd
import pytest
from distributed import LocalCluster
from fsspec.implementations.memory import MemoryFileSystem

from conftest import TEST_CLUSTER
from jobs.cluster_tracks import Config
from sonicatlas.config import load_config
from sonicatlas.runs.directory import job_session
from sonicatlas.runtime import StageTimer

pytestmark = pytest.mark.slow  # runs around a LocalCluster (job_session)

#: one partition whose write takes a while, so that it is still running when the job ends
_SLOW = 1.0


def _slowly(frame: pd.DataFrame) -> pd.DataFrame:
    time.sleep(_SLOW if frame["x"].iloc[0] == 0 else 0.0)
    return frame


def _same(frame: pd.DataFrame) -> pd.DataFrame:
    return frame


def _fails_on_third(frame: pd.DataFrame) -> pd.DataFrame:
    if frame["x"].iloc[0] == 20:
        raise ValueError("partition 2 cannot be written")
    return frame


def _table(transform) -> dd.DataFrame:
    frame = pd.DataFrame({"x": np.arange(40), "name": [f"t{i}" for i in range(40)]})
    return dd.from_pandas(frame, npartitions=4).map_partitions(transform, meta=frame.iloc[:0])


def _session(out, *overrides):
    config = load_config(Config, None, [*TEST_CLUSTER, *overrides])
    return job_session(config, str(out), False, StageTimer(lambda *_: None), lambda *_: None)


def test_a_background_write_is_whole_when_the_run_is_committed(tmp_path):
    out = tmp_path / "run"
    with _session(out) as (run_dir, _):
        run_dir.write_table("table", _table(_slowly), background=True)
        # the job returns without waiting; job_session waits before committing
    written = pd.read_parquet(out / "table").sort_values("x", ignore_index=True)
    pd.testing.assert_frame_equal(
        written, pd.DataFrame({"x": np.arange(40), "name": [f"t{i}" for i in range(40)]}),
        check_dtype=False)
    assert not list(tmp_path.glob(".run.partial-*"))


def test_a_failed_background_write_fails_the_run_and_leaves_nothing(tmp_path):
    out = tmp_path / "run"
    with pytest.raises(ValueError, match="partition 2 cannot be written"), _session(out) as (
            run_dir, _):
        run_dir.write_table("table", _table(_fails_on_third), background=True)
        run_dir.wait_for_writes()
    assert not out.exists()
    assert not list(tmp_path.glob(".run.partial-*"))


class _SlowMemory(MemoryFileSystem):
    """Storage that takes a while to open one part for writing: a write in progress."""

    protocol = "slowmemory"
    delay = 3.0  # longer than job_session takes to end (performance report, client)

    @classmethod
    def _strip_protocol(cls, path):
        return super()._strip_protocol(path.removeprefix("slowmemory://"))

    def _open(self, path, mode="rb", **kwargs):
        if "w" in mode and path.endswith("part.0.parquet"):
            time.sleep(self.delay)
        return super()._open(path, mode, **kwargs)


def test_a_run_that_fails_elsewhere_lets_its_writes_end_before_removing_them():
    # Workers that outlive the client (a remote cluster) go on with a write already running,
    # and on object stores (here: memory, shared by these thread workers) a file can be
    # written under a removed folder: only waiting for the write keeps the failed run away.
    fsspec.register_implementation("slowmemory", _SlowMemory, clobber=True)
    fs = fsspec.filesystem("slowmemory")
    with LocalCluster(n_workers=2, processes=False, dashboard_address=None) as cluster:
        with pytest.raises(RuntimeError, match="later stage"), _session(
                "slowmemory://runs/run", f"cluster.scheduler={cluster.scheduler_address}") as (
                run_dir, _):
            run_dir.write_table("table", _table(_same), background=True)
            time.sleep(0.5)  # part 0 is being written
            raise RuntimeError("a later stage failed")
        time.sleep(_SlowMemory.delay)
    assert fs.find("/runs") == []
