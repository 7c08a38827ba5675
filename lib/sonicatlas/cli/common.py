"""What every command shares: one-line errors, quiet libraries, the examples epilog."""

from __future__ import annotations

import functools
import logging
import sys
import warnings

import click

from sonicatlas.errors import SonicatlasError

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
    hold them have closed on the way out).
    """
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except SonicatlasError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("interrupted: the cluster was stopped and the partial output removed",
                       err=True)
            sys.exit(INTERRUPTED)
    return wrapper


def quiet_libraries() -> None:
    # pandas 3 makes dask's Parquet reader warn once per partition: noise, not advice.
    warnings.filterwarnings("ignore", message=".*reset_index.*")
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    logging.getLogger("distributed").setLevel(logging.WARNING)
    # distributed's size estimate of deeply nested messages (the performance report's
    # profiles) hits sizeof's recursion limit and logs a harmless warning; workers: runtime.py
    logging.getLogger("distributed.sizeof").setLevel(logging.ERROR)

