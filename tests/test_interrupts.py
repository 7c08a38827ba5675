"""Interrupted, killed and starved runs, with real processes: nothing partial is left behind."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time

import psutil
import pytest

from conftest import blob_tracks, write_catalog
from sonicatlas.runs.partials import OWNER_FILE, owner_alive, owner_record

# the dask command beside this Python (a virtual environment's bin/ need not be on PATH)
DASK = shutil.which("dask", path=os.pathsep.join([os.path.dirname(sys.executable),
                                                  os.environ.get("PATH", "")]))


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    # large enough that a k sweep runs for many seconds on two workers
    return write_catalog(blob_tracks(100_000, seed=8), tmp_path_factory.mktemp("c") / "cat",
                         parts=8)


def _start_run(out, *settings, processes=True):
    command = [sys.executable, "-m", "sonicatlas.cli", "run", "cluster-tracks", "--out",
               str(out), "--set", "cluster.n_workers=2", "--set",
               f"cluster.processes={str(processes).lower()}",
               "--set", "cluster.dashboard_address=127.0.0.1:0"]
    for text in settings:
        command += ["--set", text]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def _wait_for_line(process, marker, timeout=120):
    seen, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        seen.append(line)
        if marker in line:
            return "".join(seen)
    raise AssertionError(f"never printed {marker!r}: {''.join(seen)}")


def _partials(parent):
    return sorted(p.name for p in parent.iterdir() if ".partial-" in p.name)


def test_owner_of_a_partial_run_is_judged_by_pid_host_and_start_time():
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        record = owner_record(sleeper.pid)
        assert record["pid"] == sleeper.pid and record["host"] == socket.gethostname()
        assert owner_alive(record) is True
        # the same id with another start time is another process: the owner is gone
        assert owner_alive({**record, "process_started": record["process_started"] - 3600}) \
            is False
        assert owner_alive({**record, "host": "elsewhere.invalid"}) is None
    finally:
        sleeper.kill()
        sleeper.wait()
    assert owner_alive(record) is False


@pytest.mark.slow
def test_sigint_mid_run_stops_the_cluster_removes_the_partial_run_and_exits_130(
        catalog, tmp_path):
    out = tmp_path / "run"
    run = _start_run(out, f"input={catalog}", "k=auto")
    _wait_for_line(run, "read + validate")
    assert _partials(tmp_path)  # the run is being written
    workers = psutil.Process(run.pid).children(recursive=True)
    assert workers
    os.killpg(run.pid, signal.SIGINT)  # what Ctrl-C in a terminal does: the whole group
    _, stderr = run.communicate(timeout=90)
    assert run.returncode == 130
    assert stderr.strip().splitlines() == [
        "interrupted: the cluster was stopped and the partial output removed"]
    assert not out.exists() and _partials(tmp_path) == []
    gone, alive = psutil.wait_procs(workers, timeout=10)
    assert alive == []


def _fill(directory, files=20_000):
    # many small files: removing the partial run takes long enough to be interrupted
    for i in range(files):
        folder = directory / "filler" / f"{i // 1000:02d}"
        if i % 1000 == 0:
            folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{i}.bin").write_bytes(b"x")


@pytest.mark.slow
def test_ctrl_c_again_during_the_cleanup_does_not_stop_it(catalog, tmp_path):
    out = tmp_path / "run"
    run = _start_run(out, f"input={catalog}", "k=auto")
    _wait_for_line(run, "read + validate")
    [partial] = _partials(tmp_path)
    _fill(tmp_path / partial)
    os.killpg(run.pid, signal.SIGINT)
    # Ctrl-C pressed again and again while the cluster stops and the partial run is removed
    deadline = time.monotonic() + 90
    while run.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(run.pid, signal.SIGINT)
    _, stderr = run.communicate(timeout=30)
    assert run.returncode == 130, stderr
    assert stderr.strip().splitlines() == [
        "interrupted: the cluster was stopped and the partial output removed"]
    assert not out.exists() and _partials(tmp_path) == []


@pytest.mark.slow
def test_a_later_run_removes_the_partial_run_of_a_killed_client_and_names_the_rest(
        catalog, tmp_path):
    killed = _start_run(tmp_path / "first", f"input={catalog}", "k=auto", processes=False)
    try:
        _wait_for_line(killed, "read + validate")
        [partial] = _partials(tmp_path)
        owner = json.loads((tmp_path / partial / OWNER_FILE).read_text())
        assert owner["pid"] == killed.pid and owner["host"] == socket.gethostname()
    finally:
        os.killpg(killed.pid, signal.SIGKILL)
        killed.communicate()
    assert _partials(tmp_path) == [partial]  # nothing could clean up after SIGKILL

    # two that a later run cannot judge: another host's, and one with no owner recorded
    other = tmp_path / ".theirs.partial-0123abcd"
    other.mkdir()
    (other / OWNER_FILE).write_text(json.dumps({**owner_record(), "host": "far.invalid"}))
    (tmp_path / ".export.csv.partial-89abcdef").mkdir()

    later = _start_run(tmp_path / "second", f"input={catalog}", "k=2", processes=False)
    stdout, stderr = later.communicate(timeout=300)
    assert later.returncode == 0, stdout + stderr
    assert f"Removed 1 partial run(s) of processes that are gone: {tmp_path / partial}" \
        in stdout
    assert f"Left partial run {other} (owned by pid" in stdout and "far.invalid" in stdout
    assert f"Left partial run {tmp_path / '.export.csv.partial-89abcdef'} (no owner" in stdout
    assert _partials(tmp_path) == [".export.csv.partial-89abcdef", other.name]
    assert (tmp_path / "second" / "manifest.json").is_file()


@pytest.mark.slow
@pytest.mark.skipif(DASK is None, reason="the dask command is not installed")
def test_a_remote_scheduler_without_workers_fails_after_the_timeout_and_says_so_before(
        catalog, tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    scheduler = subprocess.Popen([DASK, "scheduler", "--host", "127.0.0.1", "--port", str(port),
                                  "--dashboard-address", "127.0.0.1:0"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                 start_new_session=True)
    try:
        out = tmp_path / "run"
        command = [sys.executable, "-m", "sonicatlas.cli", "run", "cluster-tracks", "--out",
                   str(out), "--scheduler", f"tcp://127.0.0.1:{port}", "--set",
                   f"input={catalog}", "--set", "cluster.no_workers_timeout=6", "--set",
                   "cluster.connect_timeout=30"]
        start = time.monotonic()
        finished = subprocess.run(command, capture_output=True, text=True, timeout=120)
        took = time.monotonic() - start
    finally:
        os.killpg(scheduler.pid, signal.SIGTERM)
        scheduler.wait(timeout=30)
    assert finished.returncode == 2, finished.stdout + finished.stderr
    assert re.search(r"^no workers for \d+ s; waiting up to 6 s \(cluster.no_workers_timeout\)"
                     r", see the dashboard http://127.0.0.1:\d+/status$", finished.stdout, re.M)
    assert finished.stderr.strip().splitlines() == [
        "error: the scheduler has had no workers for 6 s (cluster.no_workers_timeout); start "
        "workers or check the cluster, then run again"]
    assert took < 60
    assert not out.exists() and _partials(tmp_path) == []


@pytest.mark.slow
@pytest.mark.skipif(DASK is None, reason="the dask command is not installed")
def test_losing_the_only_worker_mid_run_fails_after_the_timeout_and_removes_the_partial(
        catalog, tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    address = f"tcp://127.0.0.1:{port}"
    common = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL,
              "start_new_session": True}
    scheduler = subprocess.Popen([DASK, "scheduler", "--host", "127.0.0.1", "--port",
                                  str(port), "--dashboard-address", "127.0.0.1:0"], **common)
    # no nanny: nothing restarts the worker once it is killed
    worker = subprocess.Popen([DASK, "worker", address, "--host", "127.0.0.1", "--nthreads",
                               "2", "--no-nanny", "--no-dashboard"], **common)
    try:
        out = tmp_path / "run"
        run = subprocess.Popen(
            [sys.executable, "-m", "sonicatlas.cli", "run", "cluster-tracks", "--out", str(out),
             "--scheduler", address, "--set", f"input={catalog}", "--set", "k=auto",
             "--set", "cluster.no_workers_timeout=6", "--set", "cluster.connect_timeout=30"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
        _wait_for_line(run, "read + validate")
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait()
        stdout, stderr = run.communicate(timeout=120)
    finally:
        for process in (worker, scheduler):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(timeout=30)
    assert run.returncode == 2, stdout + stderr
    assert "no workers for" in stdout
    assert stderr.strip().splitlines() == [
        "error: the scheduler has had no workers for 6 s (cluster.no_workers_timeout); start "
        "workers or check the cluster, then run again"]
    assert not out.exists() and _partials(tmp_path) == []
