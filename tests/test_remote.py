"""The same job through --scheduler: real `dask scheduler` and `dask worker` processes."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import pandas as pd
import pytest
from distributed import Client

from conftest import ALL_METHODS, read_table, run_job

pytestmark = pytest.mark.slow  # a scheduler and workers in their own processes

DASK = shutil.which("dask") or pytest.skip("the dask command is not installed",
                                           allow_module_level=True)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def remote_cluster(tmp_path):
    """A scheduler and two single-thread workers on 127.0.0.1; every process is stopped after."""
    address = f"tcp://127.0.0.1:{_free_port()}"
    port = address.rsplit(":", 1)[1]
    logs = open(tmp_path / "cluster.log", "w")  # noqa: SIM115 - closed below
    common = {"stdout": logs, "stderr": subprocess.STDOUT, "start_new_session": True}
    processes = [subprocess.Popen([DASK, "scheduler", "--host", "127.0.0.1", "--port", port,
                                   "--dashboard-address", "127.0.0.1:0"], **common)]
    processes += [subprocess.Popen([DASK, "worker", address, "--host", "127.0.0.1",
                                    "--nthreads", "1", "--no-dashboard",
                                    "--name", f"test-worker-{i}"], **common)
                  for i in range(2)]
    try:
        with Client(address, timeout=30) as client:
            client.wait_for_workers(2, timeout=60)
        yield address
    finally:
        for process in processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        for process in processes:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        logs.close()
        assert all(p.poll() is not None for p in processes)


def test_remote_scheduler_gives_the_same_assignments_as_a_local_cluster(
        remote_cluster, blob_catalog, tmp_path):
    # every method, so that each fitted labeler has to travel to separate worker processes
    settings = ["k=4", *ALL_METHODS]
    remote_out = tmp_path / "remote"
    command = [sys.executable, "-m", "sonicatlas.cli", "run", "cluster-tracks",
               "--scheduler", remote_cluster, "--set", f"input={blob_catalog}",
               "--out", str(remote_out)]
    for text in settings:
        command += ["--set", text]
    finished = subprocess.run(command, capture_output=True, text=True, timeout=400)
    assert finished.returncode == 0, finished.stdout + finished.stderr
    assert remote_cluster in finished.stdout  # the run says where it ran

    run_job(tmp_path / "local", f"input={blob_catalog}", *settings,
            cluster=["cluster.n_workers=2", "cluster.dashboard_address=127.0.0.1:0"])
    remote = read_table(remote_out / "assignments").sort_values("track_id", ignore_index=True)
    local = read_table(tmp_path / "local/assignments").sort_values("track_id", ignore_index=True)
    pd.testing.assert_frame_equal(remote, local)
    timing = ["fit_seconds"]
    pd.testing.assert_frame_equal(
        read_table(remote_out / "summary/method_comparison").drop(columns=timing),
        read_table(tmp_path / "local/summary/method_comparison").drop(columns=timing))
