"""The ``sonicatlas`` command: one module per command, registered on one group here."""

from __future__ import annotations

import click

from sonicatlas.cli.artist import artist_command
from sonicatlas.cli.assign import assign_command
from sonicatlas.cli.common import EPILOG, quiet_libraries
from sonicatlas.cli.export import export_command
from sonicatlas.cli.generate import generate
from sonicatlas.cli.ingest import ingest_command
from sonicatlas.cli.playlist import playlist_command
from sonicatlas.cli.run import jobs_command, run_command
from sonicatlas.cli.search import search_command
from sonicatlas.cli.serve import serve_command
from sonicatlas.cli.similar import similar_command


@click.group(epilog=EPILOG)
@click.version_option(package_name="sonicatlas")
def main() -> None:
    """Cluster music catalogs by how they sound, on a local or remote Dask cluster.

    Every command runs on a LocalCluster sized to this machine (dashboard on 127.0.0.1)
    unless --scheduler names a running Dask scheduler.
    """
    quiet_libraries()



for command in (run_command, jobs_command, generate, ingest_command, export_command,
                serve_command, similar_command, playlist_command, search_command,
                artist_command, assign_command):
    main.add_command(command)
