"""`sonicatlas serve`: the explorer app over a run."""

from __future__ import annotations

import click

from sonicatlas.cli.common import quiet_libraries, user_errors
from sonicatlas.cli.output import storage_options_option


@click.command("serve")
@click.argument("run_dir", metavar="RUN")
@click.option("--port", default=5006, show_default=True, type=int,
              help="Port of the app's web server.")
@click.option("--address", default="127.0.0.1", show_default=True,
              help="Interface to listen on. The app has no authentication: from a laptop, "
                   "reach a remote machine's app through an SSH tunnel "
                   "(ssh -L 5006:127.0.0.1:5006 host) rather than listening on 0.0.0.0.")
@click.option("--show", is_flag=True, help="Open the app in the default browser.")
@click.option("--scheduler", metavar="ADDRESS",
              help="Hold the run on this Dask scheduler's workers (tcp://host:8786), which "
                   "must reach RUN, and compute every view there: for runs too large for "
                   "one process. Default: the run is loaded into this process.")
@storage_options_option
@user_errors
def serve_command(run_dir, port, address, show, scheduler, storage_options) -> None:
    """Explore a cluster-tracks RUN in the browser: map, clusters, filters, downloads.

    RUN is a run directory (local or fsspec URL). The app is served at
    http://ADDRESS:PORT/ until Ctrl-C.
    """
    quiet_libraries()
    from sonicatlas.app.server import serve

    serve(run_dir, port=port, address=address, show=show, storage_options=storage_options,
          echo=click.echo, scheduler=scheduler)

