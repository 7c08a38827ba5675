"""``sonicatlas serve``: the explorer on a Bokeh server, bound to 127.0.0.1 by default."""

from __future__ import annotations

import signal
import socket
import sys

import panel as pn

from sonicatlas.app.data import read_run
from sonicatlas.app.discovery import Discovery
from sonicatlas.errors import InputError


def check_port(address: str, port: int) -> None:
    """Fail with a one-line error when ``address:port`` is taken."""
    with socket.socket(socket.AF_INET6 if ":" in address else socket.AF_INET) as probe:
        try:
            probe.bind((address, port))
        except OSError as error:
            raise InputError(f"cannot serve on {address}:{port}: {error.strerror.lower()} "
                             "(choose another with --port)") from error


def serve(run: str, port: int = 5006, address: str = "127.0.0.1", show: bool = False,
          storage_options: dict | None = None, echo=print, scheduler: str | None = None
          ) -> None:
    """Serve the explorer of ``run`` at ``http://address:port/`` until Ctrl-C or SIGTERM.

    The run is loaded once, before the server starts, so a run that cannot be read is an
    error here rather than in the page; every browser session shares it.

    Parameters
    ----------
    run : str
        A cluster-tracks run directory, local or fsspec URL.
    port : int
    address : str
        The interface to listen on; 127.0.0.1 unless the user asks otherwise (the app has no
        authentication).
    show : bool
        Open the default browser.
    storage_options : dict, optional
    echo : callable
    scheduler : str, optional
        A Dask scheduler's address: the run's tracks are persisted on its workers (which
        must reach ``run``) and every view is computed there, for runs too large for one
        process.

    Raises
    ------
    SchedulerUnreachableError
        ``scheduler`` does not answer.
    """
    check_port(address, port)
    if not scheduler:
        data = read_run(run, storage_options)
        # one discovery for every browser session, its names folded before the first page
        discovery = Discovery(data).warm() if data.vectors is not None else None
        return _serve(data, discovery, port, address, show, echo)
    from sonicatlas.app.cluster_data import read_run_on_cluster
    from sonicatlas.app.cluster_discovery import ClusterDiscovery
    from sonicatlas.config import ClusterConfig
    from sonicatlas.runtime import connect

    with connect(ClusterConfig(scheduler=scheduler), echo=echo):
        data = read_run_on_cluster(run, storage_options)
        _serve(data, ClusterDiscovery(run, storage_options), port, address, show, echo)


def _serve(data, discovery, port: int, address: str, show: bool, echo) -> None:
    from sonicatlas.app.layout import explorer

    if address not in ("127.0.0.1", "localhost", "::1"):
        echo(f"Warning: serving on {address}, reachable from other machines; the explorer "
             "has no authentication")
    url = f"http://{address}:{port}/"
    echo(f"Explorer of {data.run} ({data.access.size:,} tracks) at {url}  (Ctrl-C stops it)")
    server = pn.serve({"/": lambda: explorer(data, discovery=discovery)}, port=port,
                      address=address, show=show,
                      start=False, title="sonicatlas explorer",
                      websocket_origin=[f"{address}:{port}", f"localhost:{port}",
                                        f"127.0.0.1:{port}"])

    def stop(*_):
        server.io_loop.add_callback_from_signal(server.io_loop.stop)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        server.start()
        server.io_loop.start()
    finally:
        server.stop()
        echo("Explorer stopped")
        sys.stdout.flush()
