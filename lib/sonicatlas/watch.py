"""What a client watches while a job runs: that the cluster has workers, and Ctrl-C.

Both act on the main thread from outside it: the watch interrupts it with a signal, which
wakes it from any wait on the cluster; Ctrl-C silences distributed's logs of the tasks it cuts
short before they are printed.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
import time
from collections.abc import Iterator

from distributed import Client


class NoWorkersSignal(BaseException):
    """Raised in the main thread by :class:`WorkerWatch`, with the message for the user.

    :func:`sonicatlas.runtime.connect` turns it into a NoWorkersError; it is a BaseException so
    that no ``except Exception`` on the way swallows it.
    """


class WorkerWatch:
    """Watch from the client that the scheduler has workers; warn, then stop the job.

    A thread asks the scheduler for its worker count every second. After a few seconds with
    none it says so (and again every minute); after ``timeout`` seconds it interrupts the main
    thread with :class:`NoWorkersSignal`, which wakes it from any wait on the cluster. Being
    on the client side, this works with a remote scheduler whose own settings the job cannot
    change. Outside the main thread (no signal can reach it) it only warns.
    """

    poll = 1.0

    def __init__(self, client: Client, timeout: float, echo=print):
        self.client, self.timeout, self.echo = client, timeout, echo
        self.message = ""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sonicatlas-worker-watch",
                                        daemon=True)
        self._main = threading.current_thread() is threading.main_thread()
        self._previous = None

    def __enter__(self) -> WorkerWatch:
        if self._main:
            self._previous = signal.signal(_SIGNAL, self._interrupt)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        if self._main:
            signal.signal(_SIGNAL, self._previous)

    def _interrupt(self, signum, frame) -> None:
        if not self._stop.is_set():
            raise NoWorkersSignal(self.message)

    def _workers(self) -> int:
        try:
            return self.client.sync(self.client.scheduler.identity, n_workers=0)["n_workers"]
        except Exception:  # a scheduler that does not answer has no workers to offer
            return 0

    def _run(self) -> None:
        since, warn_at = None, min(_FIRST_WARNING, self.timeout / 2)
        while not self._stop.wait(self.poll):
            if self._workers():
                since, warn_at = None, min(_FIRST_WARNING, self.timeout / 2)
                continue
            now = time.monotonic()
            since = since or now - self.poll
            idle = now - since
            if idle >= self.timeout:
                self.message = (f"the scheduler has had no workers for {self.timeout:g} s "
                                "(cluster.no_workers_timeout); start workers or check the "
                                "cluster, then run again")
                if self._main and not self._stop.is_set():
                    signal.pthread_kill(threading.main_thread().ident, _SIGNAL)
                return
            if idle >= warn_at and not self._stop.is_set():
                self.echo(f"no workers for {idle:.0f} s; waiting up to {self.timeout:g} s "
                          f"(cluster.no_workers_timeout), see the dashboard "
                          f"{self.client.dashboard_link}")
                warn_at += _REPEAT_WARNING


_SIGNAL = signal.SIGUSR1  # only this process's main thread gets it, from the watch
_FIRST_WARNING = 5.0
_REPEAT_WARNING = 60.0


def _stop(signum, frame) -> None:
    # A second Ctrl-C must not cut short what the first one started (stopping the cluster,
    # removing the partial output): from here on SIGINT is ignored.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _INTERRUPTED.set()
    for name in ("distributed", "asyncio", "tornado"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    raise KeyboardInterrupt


_INTERRUPTED = threading.Event()


@contextlib.contextmanager
def interrupt_once() -> Iterator[None]:
    """A command's whole life: the first Ctrl-C raises KeyboardInterrupt, later ones are ignored.

    The cleanup on the way out (the cluster stopped, the partial output removed) and the
    exit itself then finish however often Ctrl-C is pressed; SIGINT stays ignored until the
    process ends. Without an interrupt the previous handler is put back on leaving.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _INTERRUPTED.clear()
    previous = signal.signal(signal.SIGINT, _stop)
    try:
        yield
    finally:
        if not _INTERRUPTED.is_set():
            signal.signal(signal.SIGINT, previous)


@contextlib.contextmanager
def quiet_after_interrupt() -> Iterator[None]:
    """Ctrl-C as a plain KeyboardInterrupt, with distributed's logs silenced from that moment.

    The tasks it cuts short are logged (with tracebacks) as they are collected and as the
    client and cluster close: noise after the user has asked to stop. Further Ctrl-C are
    ignored until the block is left; inside :func:`interrupt_once` (a command) until the
    process ends, so the command's own cleanup is not cut short either.
    """
    if (threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGINT) is _stop):
        yield
        return
    previous = signal.signal(signal.SIGINT, _stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
