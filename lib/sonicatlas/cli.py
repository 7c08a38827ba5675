"""The ``sonicatlas`` command: run jobs, generate synthetic catalogs, ingest CSV exports."""

from __future__ import annotations

import functools
import logging
import sys
import warnings
from importlib.metadata import entry_points

import click

from sonicatlas.config import ClusterConfig, load_config
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


def _jobs() -> dict:
    # Jobs register under this entry-point group (pyproject.toml), so lib/ never imports jobs/.
    return {ep.name: ep for ep in entry_points(group="sonicatlas.jobs")}


def _user_errors(func):
    """Report SonicatlasError as one line on stderr and exit with its code, no traceback."""
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except SonicatlasError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(exc.exit_code)
    return wrapper


def _quiet_libraries() -> None:
    # pandas 3 makes dask's Parquet reader warn once per partition: noise, not advice.
    warnings.filterwarnings("ignore", message=".*reset_index.*")
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    logging.getLogger("distributed").setLevel(logging.WARNING)
    # distributed's size estimate of deeply nested messages (the performance report's
    # profiles) hits sizeof's recursion limit and logs a harmless warning; workers: runtime.py
    logging.getLogger("distributed.sizeof").setLevel(logging.ERROR)


@click.group(epilog=EPILOG)
@click.version_option(package_name="sonicatlas")
def main() -> None:
    """Cluster music catalogs by how they sound, on a local or remote Dask cluster.

    Every command runs on a LocalCluster sized to this machine (dashboard on 127.0.0.1)
    unless --scheduler names a running Dask scheduler.
    """
    _quiet_libraries()


@main.command("run", epilog=EPILOG)
@click.argument("job", metavar="JOB")
@click.option("-c", "--config", "config_paths", type=click.Path(dir_okay=False),
              multiple=True, help="YAML config (see conf/); repeat to merge several, e.g. "
              "a job file and conf/cluster/remote.yaml. Unset options take their defaults.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a config value, e.g. --set k=8 --set kmeans.max_iter=50. "
                   "Repeatable.")
@click.option("--scheduler", metavar="ADDRESS",
              help="Run on this Dask scheduler (tcp://host:8786) instead of a LocalCluster; "
                   "the workers read the input themselves.")
@click.option("--out", metavar="DIR", help="Run directory (default: runs/<job>-<time>).")
@click.option("--overwrite", is_flag=True, help="Replace an existing run directory.")
@_user_errors
def run_command(job, config_paths, overrides, scheduler, out, overwrite) -> None:
    """Run JOB (cluster-tracks) and write a run directory.

    The run is written to a hidden directory beside --out and moved into place only when it
    is complete, so a failed run leaves nothing behind.
    """
    jobs = _jobs()
    if job not in jobs:
        raise click.BadParameter(f"unknown job {job!r}; available: {', '.join(sorted(jobs))}",
                                 param_hint="JOB")
    module = jobs[job].load()
    overrides = list(overrides) + ([f"cluster.scheduler={scheduler}"] if scheduler else [])
    config = load_config(module.Config, config_paths, overrides)
    click.echo(f"sonicatlas {job}")
    summary = module.run(config, out=out, overwrite=overwrite, echo=click.echo)
    click.echo(summary.text())


@main.command("jobs")
def jobs_command() -> None:
    """List the jobs that `sonicatlas run` knows."""
    for name, ep in sorted(_jobs().items()):
        doc = (ep.load().__doc__ or "").strip().splitlines()
        click.echo(f"{name:<20} {doc[0] if doc else ''}")


@main.group("generate")
def generate() -> None:
    """Make synthetic data at any scale, on the workers."""


@generate.command("tracks")
@click.option("--rows", required=True, type=str, help="Tracks to make, e.g. 10_000_000.")
@click.option("--out", required=True, metavar="DIR", help="Catalog directory or fsspec URL.")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--rows-per-partition", default=1_000_000, show_default=True, type=int)
@click.option("--scheduler", metavar="ADDRESS", help="Generate on this Dask scheduler.")
@click.option("--overwrite", is_flag=True, help="Replace an existing catalog.")
@_user_errors
def generate_tracks_command(rows, out, seed, rows_per_partition, scheduler, overwrite) -> None:
    """A realistic catalog: per-genre feature distributions learned from real Spotify data,
    long-tailed artists, unique ids and a ground-truth genre. Each partition is made on a
    worker from (seed, partition)."""
    from sonicatlas.runtime import connect
    from sonicatlas.synthetic.tracks import generate_tracks

    with connect(ClusterConfig(scheduler=scheduler, dashboard_address="127.0.0.1:0"),
                 click.echo):
        made = generate_tracks(out, rows=int(rows.replace("_", "")), seed=seed,
                               rows_per_partition=rows_per_partition, overwrite=overwrite)
    click.echo(f"Wrote {made.rows:,} tracks in {made.npartitions} partitions to {made.out}")


@generate.command("listens")
@click.option("--tracks", required=True, metavar="DIR",
              help="Track catalog, e.g. from `sonicatlas generate tracks`.")
@click.option("--out", required=True, metavar="DIR",
              help="Directory to write: OUT/listens and OUT/users.")
@click.option("--users", required=True, type=str, help="Listeners, e.g. 1_000_000.")
@click.option("--listens", required=True, type=str, help="Listens, e.g. 100_000_000.")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--tastes", default=6, show_default=True, type=int,
              help="Planted taste groups (the ground truth in OUT/users).")
@click.option("--rows-per-partition", default=2_000_000, show_default=True, type=int)
@click.option("--scheduler", metavar="ADDRESS", help="Generate on this Dask scheduler.")
@click.option("--overwrite", is_flag=True, help="Replace an existing output directory.")
@_user_errors
def generate_listens_command(tracks, out, users, listens, seed, tastes, rows_per_partition,
                             scheduler, overwrite) -> None:
    """Listening logs over a catalog: users in planted taste groups (genre mix, daily
    rhythm), sessions of popularity-weighted tracks over 90 days. Each partition is made on a
    worker from (seed, partition)."""
    from sonicatlas.runtime import connect
    from sonicatlas.synthetic.listens import generate_listens

    with connect(ClusterConfig(scheduler=scheduler, dashboard_address="127.0.0.1:0"),
                 click.echo):
        made = generate_listens(tracks, out, users=int(users.replace("_", "")),
                                listens=int(listens.replace("_", "")), seed=seed,
                                rows_per_partition=rows_per_partition, tastes=tastes,
                                overwrite=overwrite)
    click.echo(f"Wrote {made.listens:,} listens of {made.users:,} users in "
               f"{made.npartitions} partitions to {made.out}")


@main.command("ingest")
@click.argument("paths", nargs=-1, required=True)
@click.option("--out", required=True, metavar="DIR", help="Catalog directory to write.")
@click.option("--columns", "mapping", metavar="SRC=DST,...",
              help="Map CSV column names onto the contract, e.g. track_artist=artist_name.")
@click.option("--columns-file", type=click.Path(exists=True, dir_okay=False),
              help="YAML with a `columns:` mapping (see conf/sources/).")
@click.option("--scheduler", metavar="ADDRESS", help="Ingest on this Dask scheduler.")
@click.option("--overwrite", is_flag=True, help="Replace an existing catalog.")
@_user_errors
def ingest_command(paths, out, mapping, columns_file, scheduler, overwrite) -> None:
    """Turn CSV exports (PATHS: files or globs, any fsspec URL) into a Parquet catalog.

    Rows that cannot be parsed go to OUT/_rejects/ with their reason.
    """
    from sonicatlas.io.columns import load_column_mapping, parse_column_mapping
    from sonicatlas.io.ingest import ingest_csv
    from sonicatlas.runtime import connect

    columns = load_column_mapping(columns_file) if columns_file else {}
    columns.update(parse_column_mapping(mapping) if mapping else {})
    with connect(ClusterConfig(scheduler=scheduler, dashboard_address="127.0.0.1:0"),
                 click.echo):
        result = ingest_csv(list(paths), out, columns, overwrite=overwrite)
    click.echo(f"Read {result.rows_read:,} rows: {result.rows_accepted:,} to {result.out}, "
               f"{result.rows_rejected:,} to {result.out}/_rejects")
    for reason, n in result.reject_reasons.items():
        click.echo(f"  {n:>10,}  {reason}")


@main.command("export")
@click.argument("run_dir", metavar="RUN")
@click.option("--cluster", metavar="NAME_OR_ID",
              help="Only this cluster: its id or its name (any case; punctuation optional). "
                   "Default: every cluster.")
@click.option("--format", "fmt", type=click.Choice(["csv", "json", "parquet"]),
              help="json is JSON Lines. Default: from --out's suffix (.csv; .json, .jsonl, "
                   ".ndjson; anything else parquet).")
@click.option("--out", metavar="PATH",
              help="File (csv, json) or directory (parquet) to write; with --summary, the "
                   "markdown file (default: print it).")
@click.option("--summary", is_flag=True,
              help="Write the run's one-page markdown summary instead of tracks.")
@click.option("--overwrite", is_flag=True, help="Replace an existing --out.")
@_user_errors
def export_command(run_dir, cluster, fmt, out, summary, overwrite) -> None:
    """Export a run's tracks (one cluster or all, with the cluster name) or its summary.

    \b
    Examples:
      sonicatlas export runs/mine-k6 --cluster "calm acoustic" --out calm.csv
      sonicatlas export runs/mine-k6 --cluster 2 --format json --out cluster2.jsonl
      sonicatlas export runs/mine-k6 --out all-tracks.parquet
      sonicatlas export runs/mine-k6 --summary --out mine-k6.md
    """
    from sonicatlas.runs.export import export_tracks, infer_format
    from sonicatlas.runs.summary_page import run_summary_markdown, write_run_summary

    if summary:
        if cluster is not None or fmt is not None:
            raise click.UsageError("--summary takes no --cluster or --format")
        if out is None:
            click.echo(run_summary_markdown(run_dir))
        else:
            click.echo(f"Wrote {write_run_summary(run_dir, out, overwrite=overwrite)}")
        return
    if out is None:
        raise click.UsageError("--out is required (or pass --summary)")
    result = export_tracks(run_dir, out, cluster=cluster, format=fmt or infer_format(out),
                           overwrite=overwrite)
    which = ("all clusters" if result.cluster is None
             else f"cluster {result.cluster} ({result.cluster_name})")
    click.echo(f"Wrote {result.rows:,} tracks of {which} to {result.out} ({result.format})")


@main.command("serve")
@click.argument("run_dir", metavar="RUN")
@click.option("--port", default=5006, show_default=True, type=int,
              help="Port of the app's web server.")
@click.option("--address", default="127.0.0.1", show_default=True,
              help="Interface to listen on. The app has no authentication: from a laptop, "
                   "reach a remote machine's app through an SSH tunnel "
                   "(ssh -L 5006:127.0.0.1:5006 host) rather than listening on 0.0.0.0.")
@click.option("--show", is_flag=True, help="Open the app in the default browser.")
@_user_errors
def serve_command(run_dir, port, address, show) -> None:
    """Explore a cluster-tracks RUN in the browser: map, clusters, filters, downloads.

    RUN is a run directory (local or fsspec URL). The app is served at
    http://ADDRESS:PORT/ until Ctrl-C.
    """
    _quiet_libraries()
    from sonicatlas.app.server import serve

    serve(run_dir, port=port, address=address, show=show, echo=click.echo)


if __name__ == "__main__":
    main()
