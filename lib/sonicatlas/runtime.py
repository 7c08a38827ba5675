"""Connecting to Dask (:mod:`sonicatlas.deploy`), and watching that the cluster has workers.

Also the small pieces of run-time feedback a user expects from a long job: the dashboard link,
a line per finished stage with its seconds, and a progress bar on an interactive terminal.
"""

from __future__ import annotations

import contextlib
import ctypes
import glob
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from distributed import Client, WorkerPlugin, progress

from sonicatlas import deploy
from sonicatlas.config import ClusterConfig
from sonicatlas.errors import NoWorkersError, SchedulerUnreachableError
from sonicatlas.watch import NoWorkersSignal, WorkerWatch, quiet_after_interrupt

log = logging.getLogger(__name__)


def local_cluster_size(config: ClusterConfig) -> int:
    """Workers for a LocalCluster: the configured number, else one per core (at most 8)."""
    return config.n_workers or max(1, min(os.cpu_count() or 1, 8))


@contextlib.contextmanager
def connect(config: ClusterConfig, echo=print) -> Iterator[Client]:
    """Yield a Client on a remote scheduler, a factory's cluster or a new LocalCluster.

    The client, and any cluster started here, are closed on the way out. While the block
    runs, a thread watches that the scheduler has workers (:class:`WorkerWatch`).

    Parameters
    ----------
    config : ClusterConfig
        ``scheduler`` set: connect there (with ``tls``'s certificates for ``tls://``),
        failing within ``connect_timeout`` seconds. ``factory`` set: build that cluster.
        Otherwise start a LocalCluster bound to 127.0.0.1.
    echo : callable
        Where the dashboard link and the watch's warnings are announced.

    Raises
    ------
    SchedulerUnreachableError
        The remote scheduler did not answer in time, or refused the certificates.
    ConfigError
        Certificates missing or unusable, or a factory that cannot be built.
    NoWorkersError
        The scheduler had no workers for ``no_workers_timeout`` seconds.
    """
    try:
        with contextlib.ExitStack() as stack:
            cluster = None
            if config.scheduler:
                client = _remote_client(config)
            else:
                if config.factory:
                    cluster = deploy.build_factory(config)
                else:
                    cluster = deploy.local_cluster(config, local_cluster_size(config))
                stack.callback(cluster.close)
                client = Client(cluster, set_as_default=True)
            stack.callback(client.close)
            # Persisted collections still held by the caller would otherwise be reported as
            # "lost" while the workers shut down.
            stack.callback(logging.getLogger("distributed.scheduler").setLevel, logging.ERROR)
            client.register_plugin(QuietSizeof())
            echo(_announce(config, client, cluster))
            stack.enter_context(WorkerWatch(client, config.no_workers_timeout, echo))
            stack.enter_context(quiet_after_interrupt())
            yield client
    except NoWorkersSignal as exc:  # wherever it reached the main thread, cleanup included
        raise NoWorkersError(str(exc)) from None


def _remote_client(config: ClusterConfig) -> Client:
    security = deploy.security(config)
    try:
        return Client(config.scheduler, timeout=config.connect_timeout, set_as_default=True,
                      security=security)
    except (OSError, TimeoutError) as exc:
        hint = ("; do cluster.tls's certificates belong to this cluster?" if security
                else "; is `dask scheduler` running there, and is the port open?")
        raise SchedulerUnreachableError(
            f"cannot reach the Dask scheduler at {config.scheduler} within "
            f"{config.connect_timeout:g} s ({exc.__class__.__name__}: {exc}){hint}") from exc


def _announce(config: ClusterConfig, client: Client, cluster) -> str:
    if config.scheduler:
        return f"Dask: {config.scheduler}; dashboard {client.dashboard_link}"
    if config.factory:
        return f"Dask: {config.factory}; dashboard {client.dashboard_link}"
    where = "a LocalCluster of " + _describe_workers(client)
    if config.processes:
        client.register_plugin(IgnoreInterrupts())
    if config.processes and not huge_pages_wanted(config):
        client.register_plugin(NoHugePages())
        where += " (huge pages off)"
    line = f"Dask: {where}; dashboard {deploy.bound_dashboard(cluster)}"
    if deploy.dashboard_is_open(config.dashboard_address):
        line += ("\nwarning: the dashboard listens on every interface and has no "
                 "authentication; anyone who reaches this machine can see and stop the work")
    return line




class QuietSizeof(WorkerPlugin):
    """Silence distributed's harmless size-estimate warning on deeply nested messages.

    Before sending a message a worker estimates its size; for the performance report's deep
    profile trees ``sizeof`` reaches its recursion limit and logs a warning, although the
    message is then sent as usual. Memory and other warnings stay on.
    """

    name = "sonicatlas-quiet-sizeof"

    def setup(self, worker) -> None:
        logging.getLogger("distributed.sizeof").setLevel(logging.ERROR)


class IgnoreInterrupts(WorkerPlugin):
    """Leave Ctrl-C to the client in a LocalCluster's worker processes.

    A terminal sends SIGINT to every process of the command, workers included; each would
    die with its own traceback while the client is stopping them in order. The warning a
    worker logs for each task it was running when it is stopped is dropped too: after Ctrl-C
    the user is told once, by the client.
    """

    name = "sonicatlas-ignore-interrupts"

    def setup(self, worker) -> None:
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, signal.SIG_IGN)
        logging.getLogger("distributed.worker.state_machine").addFilter(_cut_short_on_close)


def _cut_short_on_close(record: logging.LogRecord) -> bool:
    # distributed logs this only when a closing worker cancels the tasks it is running
    return not record.getMessage().endswith("ended with CancelledError")


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
