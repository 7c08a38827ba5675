"""What every command shares: one-line errors, quiet libraries, the examples epilog."""

from __future__ import annotations

import functools
import logging
import sys
import warnings

import click

from sonicatlas.config import ClusterConfig, ClusterSection, load_config
from sonicatlas.errors import SonicatlasError
from sonicatlas.watch import interrupt_once

EPILOG = """\b
Examples:
  sonicatlas run cluster-tracks                      # built-in sample, LocalCluster
  sonicatlas generate tracks --rows 10_000_000 --out data/catalog/tracks
  sonicatlas ingest export/*.csv --out data/catalog/mine --columns track_artist=artist_name
  sonicatlas run cluster-tracks -c conf/cluster_tracks.yaml --set input=data/catalog/mine \\
      --set k=6 --out runs/mine-k6
  sonicatlas run cluster-tracks --scheduler tcp://10.0.0.5:8786 --set input=s3://bucket/cat
  sonicatlas export runs/mine-k6 --cluster "calm acoustic" --out calm.csv
  sonicatlas generate listens --tracks data/catalog/tracks --users 1_000_000 \\
      --listens 100_000_000 --out data/catalog/listens
  sonicatlas run segment-listeners --set listens=data/catalog/listens/listens \\
      --set tracks_run=runs/mine-k6
"""


#: the shell's exit status for a command ended by Ctrl-C (128 + SIGINT)
INTERRUPTED = 130


def user_errors(func):
    """Report SonicatlasError as one line on stderr and exit with its code, no traceback.

    Ctrl-C (SIGINT) is one line too, and exit status 130: by the time it is printed the
    command's cluster is stopped and its partial output removed (the context managers that
    hold them have closed on the way out). Ctrl-C pressed again meanwhile is ignored
    (:func:`~sonicatlas.watch.interrupt_once`), so that cleanup always finishes.
    """
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            with interrupt_once():
                return func(*args, **kwargs)
        except SonicatlasError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("interrupted: the cluster was stopped and the partial output removed",
                       err=True)
            sys.exit(INTERRUPTED)
    return wrapper


def with_scheduler(overrides, scheduler: str | None) -> list[str]:
    """``--set`` overrides with ``--scheduler`` last, as ``cluster.scheduler``: it wins."""
    return list(overrides) + ([f"cluster.scheduler={scheduler}"] if scheduler else [])


def cluster_options(func):
    """``-c``, ``--set`` and ``--scheduler`` of a command that starts a cluster but runs no job.

    They are ``run``'s, limited to the ``cluster`` section (:func:`command_cluster`).
    """
    options = [
        click.option("-c", "--config", "config_paths", type=click.Path(dir_okay=False),
                     multiple=True, help="YAML with a `cluster:` section, e.g. "
                     "conf/cluster/remote-tls.yaml; repeat to merge several."),
        click.option("--set", "overrides", multiple=True, metavar="cluster.KEY=VALUE",
                     help="Override a cluster setting, e.g. --set cluster.n_workers=2 or "
                     "--set cluster.tls='{ca_file: ca.pem, cert: c.pem, key: k.pem}'. "
                     "Repeatable."),
        click.option("--scheduler", metavar="ADDRESS",
                     help="Work on this Dask scheduler (tcp://host:8786, or tls://host:8786 "
                     "with cluster.tls) instead of a LocalCluster."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def command_cluster(config_paths, overrides, scheduler: str | None) -> ClusterConfig:
    """The cluster settings of :func:`cluster_options`, validated as ``run`` validates them.

    A LocalCluster's dashboard takes a free port unless one is set: these commands often run
    beside a job that holds the default one.

    Raises
    ------
    ConfigError
        A file is unreadable, a key is not a cluster setting, or a value is invalid.
    """
    cluster = load_config(ClusterSection, config_paths,
                          with_scheduler(overrides, scheduler)).cluster
    if "dashboard_address" not in cluster.model_fields_set:
        cluster = cluster.model_copy(update={"dashboard_address": "127.0.0.1:0"})
    return cluster


def quiet_libraries() -> None:
    # pandas 3 makes dask's Parquet reader warn once per partition: noise, not advice.
    warnings.filterwarnings("ignore", message=".*reset_index.*")
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    logging.getLogger("distributed").setLevel(logging.WARNING)
    # distributed's size estimate of deeply nested messages (the performance report's
    # profiles) hits sizeof's recursion limit and logs a harmless warning; workers: runtime.py
    logging.getLogger("distributed.sizeof").setLevel(logging.ERROR)

