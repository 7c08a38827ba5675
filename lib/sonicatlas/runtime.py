"""Connecting to Dask: a LocalCluster sized to the machine or a remote scheduler.

Also the small pieces of run-time feedback a user expects from a long job: the dashboard link,
a line per finished stage with its seconds, and a progress bar on an interactive terminal.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import dask
from distributed import Client, LocalCluster, WorkerPlugin, progress

from .config import ClusterConfig
from .errors import SchedulerUnreachableError

log = logging.getLogger(__name__)


def local_cluster_size(config: ClusterConfig) -> int:
    """Workers for a LocalCluster: the configured number, else one per core (at most 8)."""
    return config.n_workers or max(1, min(os.cpu_count() or 1, 8))


@contextlib.contextmanager
def connect(config: ClusterConfig, echo=print) -> Iterator[Client]:
    """Yield a Client on a remote scheduler or on a new LocalCluster, and close it after.

    Parameters
    ----------
    config : ClusterConfig
        ``scheduler`` set: connect there, failing within ``connect_timeout`` seconds.
        Otherwise start a LocalCluster bound to 127.0.0.1.
    echo : callable
        Where the dashboard link is announced.

    Raises
    ------
    SchedulerUnreachableError
        The remote scheduler did not answer in time; the message names the address.
    """
    cluster = None
    if config.scheduler:
        try:
            client = Client(config.scheduler, timeout=config.connect_timeout,
                            set_as_default=True)
        except (OSError, TimeoutError) as exc:
            raise SchedulerUnreachableError(
                f"cannot reach the Dask scheduler at {config.scheduler} within "
                f"{config.connect_timeout:g} s ({exc.__class__.__name__}: {exc}); is "
                "`dask scheduler` running there, and is the port open?") from exc
    else:
        # The scheduler (in this process) reads the setting once, as it starts.
        with dask.config.set({"distributed.scheduler.worker-saturation":
                              config.worker_saturation}):
            cluster = LocalCluster(
                n_workers=local_cluster_size(config),
                threads_per_worker=config.threads_per_worker,
                processes=config.processes,
                memory_limit=config.memory_limit,
                dashboard_address=config.dashboard_address,
                # Thread workers talk in-process; process workers listen on loopback only.
                **({"host": "127.0.0.1"} if config.processes else {}),
            )
        client = Client(cluster, set_as_default=True)
    client.register_plugin(QuietSizeof())
    where = config.scheduler or "a LocalCluster of " + _describe_workers(client)
    echo(f"Dask: {where}; dashboard {client.dashboard_link}")
    try:
        yield client
    finally:
        # Persisted collections still held by the caller would otherwise be reported as
        # "lost" while the workers shut down.
        logging.getLogger("distributed.scheduler").setLevel(logging.ERROR)
        client.close()
        if cluster is not None:
            cluster.close()


class QuietSizeof(WorkerPlugin):
    """Silence distributed's harmless size-estimate warning on deeply nested messages.

    Before sending a message a worker estimates its size; for the performance report's deep
    profile trees ``sizeof`` reaches its recursion limit and logs a warning, although the
    message is then sent as usual. Memory and other warnings stay on.
    """

    name = "sonicatlas-quiet-sizeof"

    def setup(self, worker) -> None:
        logging.getLogger("distributed.sizeof").setLevel(logging.ERROR)


def _describe_workers(client: Client) -> str:
    workers = client.scheduler_info(n_workers=-1)["workers"].values()
    threads = sum(w["nthreads"] for w in workers)
    return f"{len(workers)} workers, {threads} threads"


def show_progress(*collections) -> None:
    """Draw a progress bar for persisted collections, on an interactive terminal only.

    Elsewhere (CI logs, files) the per-stage lines are the progress report.
    """
    if sys.stdout.isatty():
        progress(*collections)
        print()


@dataclass
class StageTimer:
    """Times named stages, announces each as it ends, and keeps the seconds for the manifest."""

    echo: object = print
    seconds: dict[str, float] = field(default_factory=dict)

    @contextlib.contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        yield
        elapsed = time.perf_counter() - start
        self.seconds[name] = round(self.seconds.get(name, 0.0) + elapsed, 3)
        self.echo(f"  {name:<24} {elapsed:7.2f} s")
