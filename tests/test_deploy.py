"""LocalClusters listen on loopback only; cluster.factory builds a cluster class and closes it."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pandas as pd
import psutil
import pytest

from conftest import TEST_CLUSTER, blob_tracks, run_job, write_catalog
from sonicatlas.config import ClusterConfig
from sonicatlas.runtime import connect

_LISTENERS = """
import json, os, sys, psutil
from sonicatlas.config import ClusterConfig
from sonicatlas.runtime import connect
lines = []
config = ClusterConfig(n_workers=2, processes=sys.argv[1] == "true",
                       dashboard_address=sys.argv[2])
with connect(config, lines.append) as client:
    processes = [psutil.Process(), *psutil.Process().children(recursive=True)]
    bound = sorted({(c.laddr.ip, c.laddr.port) for p in processes
                    for c in p.net_connections("inet") if c.status == psutil.CONN_LISTEN})
print(json.dumps({"lines": lines, "bound": bound}))
"""


def _listeners(processes: bool, dashboard: str) -> dict:
    finished = subprocess.run([sys.executable, "-c", _LISTENERS, str(processes).lower(),
                               dashboard], capture_output=True, text=True, timeout=120)
    assert finished.returncode == 0, finished.stderr
    return json.loads(finished.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("processes", [True, False])
def test_a_local_cluster_listens_on_loopback_only_and_prints_the_bound_dashboard(processes):
    found = _listeners(processes, "127.0.0.1:0")
    assert found["bound"] and {ip for ip, _ in found["bound"]} == {"127.0.0.1"}
    [line] = found["lines"]
    port = int(re.search(r"dashboard http://127\.0\.0\.1:(\d+)/status$", line).group(1))
    assert ["127.0.0.1", port] in found["bound"]


def test_a_dashboard_on_every_interface_is_printed_as_such_with_a_warning():
    found = _listeners(False, "0.0.0.0:0")
    first, warning = found["lines"][0].splitlines()
    port = int(re.search(r"dashboard http://0\.0\.0\.0:(\d+)/status$", first).group(1))
    assert ["0.0.0.0", port] in found["bound"]
    assert warning.startswith("warning: the dashboard listens on every interface and has no "
                              "authentication")
    # everything but the dashboard still listens on loopback only
    assert {ip for ip, p in found["bound"] if p != port} == {"127.0.0.1"}


@pytest.mark.slow
def test_a_subprocess_cluster_factory_is_built_used_and_closed():
    config = ClusterConfig(factory="distributed.SubprocessCluster", factory_options={
        "n_workers": 1, "threads_per_worker": 1, "host": "127.0.0.1",
        "dashboard_address": "127.0.0.1:0"})
    lines = []
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    with connect(config, lines.append) as client:
        started = [p for p in psutil.Process().children(recursive=True) if p.pid not in before]
        assert len(started) >= 2  # a scheduler and a worker, each in its own process
        assert client.submit(sum, [1, 2, 3]).result() == 6
        assert len(client.scheduler_info()["workers"]) == 1
    assert lines[0].startswith("Dask: distributed.SubprocessCluster; dashboard http://")
    gone, alive = psutil.wait_procs(started, timeout=30)
    assert alive == []
    assert client.status == "closed"


@pytest.mark.slow
def test_a_local_cluster_factory_runs_the_job_as_the_built_in_cluster_does(tmp_path):
    catalog = write_catalog(blob_tracks(2_000, seed=6), tmp_path / "cat")
    options = {"n_workers": 1, "threads_per_worker": 2, "processes": False,
               "dashboard_address": "127.0.0.1:0"}
    command = [sys.executable, "-m", "sonicatlas.cli", "run", "cluster-tracks", "--out",
               str(tmp_path / "factory"), "--set", f"input={catalog}", "--set", "k=3",
               "--set", "cluster.factory=distributed.LocalCluster",
               "--set", f"cluster.factory_options={json.dumps(options)}"]
    finished = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stdout + finished.stderr
    assert "Dask: distributed.LocalCluster; dashboard http://" in finished.stdout
    run_job(tmp_path / "local", f"input={catalog}", "k=3", cluster=TEST_CLUSTER)
    factory = pd.read_parquet(tmp_path / "factory/assignments").sort_values("track_id")
    local = pd.read_parquet(tmp_path / "local/assignments").sort_values("track_id")
    pd.testing.assert_frame_equal(factory.reset_index(drop=True), local.reset_index(drop=True))


@pytest.mark.parametrize(("factory", "options", "message"), [
    ("no_such_package.Cluster", "{}", "cluster.factory: cannot import no_such_package.Cluster"),
    ("distributed.NoSuchCluster", "{}", "cluster.factory: cannot import "
     "distributed.NoSuchCluster"),
    ("distributed.LocalCluster", "{n_workers: many}", "cluster.factory: "
     "distributed.LocalCluster(**factory_options) failed: "),
    ("LocalCluster", "{}", "cluster.factory: String should match pattern"),
])
def test_a_factory_that_cannot_be_built_is_one_line(tmp_path, factory, options, message):
    command = [sys.executable, "-m", "sonicatlas.cli", "run", "cluster-tracks", "--out",
               str(tmp_path / "run"), "--set", f"cluster.factory={factory}",
               "--set", f"cluster.factory_options={options}"]
    finished = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert finished.returncode == 2, finished.stdout + finished.stderr
    [line] = finished.stderr.strip().splitlines()
    assert line.startswith("error: ") and message in line
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("settings", "message"), [
    (["cluster.scheduler=tcp://h:1", "cluster.factory=distributed.LocalCluster"],
     "cluster: set scheduler or factory, not both"),
    (["cluster.factory_options={n_workers: 1}"], "cluster: factory_options needs factory"),
    (["cluster.scheduler=tcp://h:1", "cluster.tls={ca_file: a, cert: b, key: c}"],
     "cluster: tls is for a tls:// scheduler"),
    (["cluster.tls={ca_file: a, cert: b}"], "cluster.tls.key: Field required"),
    (["cluster.no_workers_timeout=0"], "cluster.no_workers_timeout: Input should be greater"),
])
def test_cluster_keys_are_validated_and_the_message_names_the_key(settings, message):
    from sonicatlas.config import ClusterTracksConfig, load_config
    from sonicatlas.errors import ConfigError

    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(ClusterTracksConfig, None, settings)


def test_the_readmes_cluster_examples_are_valid_configs():
    from pathlib import Path

    import yaml

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme.split("## Where it runs", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```yaml\n(.*?)```", section, re.S)
    factories = [ClusterConfig(**yaml.safe_load(block)["cluster"]).factory for block in blocks]
    assert factories == [None, "dask_jobqueue.SLURMCluster",
                         "dask_kubernetes.operator.KubeCluster", "dask_gateway.GatewayCluster",
                         "coiled.Cluster"]
