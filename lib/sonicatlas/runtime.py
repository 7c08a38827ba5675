"""Connecting to Dask: a LocalCluster sized to the machine or a remote scheduler.

Also the small pieces of run-time feedback a user expects from a long job: the dashboard link,
a line per finished stage with its seconds, and a progress bar on an interactive terminal.
"""

from __future__ import annotations

import contextlib
import ctypes
import glob
import logging
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import dask
from distributed import Client, LocalCluster, WorkerPlugin, progress

from sonicatlas.config import ClusterConfig
from sonicatlas.errors import SchedulerUnreachableError

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
    if cluster is not None and config.processes and not huge_pages_wanted(config):
        client.register_plugin(NoHugePages())
        where += " (huge pages off)"
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


def free_page_reporting(sysfs: str = "/sys") -> bool:
    """Whether this machine is a virtual machine whose balloon device reports free pages.

    The host then takes back memory the guest leaves free; touching it again costs the
    host's work too, and for a 2 MB huge page far more than for small pages
    (docs/benchmarks.md).
    """
    for path in glob.glob(f"{sysfs}/bus/virtio/drivers/virtio_balloon/*/features"):
        with open(path) as handle:
            bits = handle.read().strip()
        if len(bits) > _VIRTIO_BALLOON_F_REPORTING and bits[_VIRTIO_BALLOON_F_REPORTING] == "1":
            return True
    return False


_VIRTIO_BALLOON_F_REPORTING = 5  # feature bit, as the virtio spec numbers them


def huge_pages_wanted(config: ClusterConfig) -> bool:
    """``cluster.huge_pages``, with ``auto`` resolved for this machine."""
    if config.huge_pages == "auto":
        return not free_page_reporting()
    return config.huge_pages


class NoHugePages(WorkerPlugin):
    """Turn transparent huge pages off in each worker process (Linux; elsewhere nothing).

    Each worker reads its partitions into memory it has never touched; where first touching
    a huge page is dear (:func:`free_page_reporting`), that makes the read slower with them.
    Memory the worker already holds keeps its pages.
    """

    name = "sonicatlas-no-huge-pages"

    def setup(self, worker) -> None:
        if sys.platform.startswith("linux"):
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.prctl(_PR_SET_THP_DISABLE, 1, 0, 0, 0) != 0:
                log.warning("could not turn huge pages off: %s", os.strerror(ctypes.get_errno()))


_PR_SET_THP_DISABLE = 41  # from linux/prctl.h


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
