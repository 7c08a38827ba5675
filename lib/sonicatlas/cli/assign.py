"""`sonicatlas assign`: place a new catalog's songs into a run's clusters."""

from __future__ import annotations

import click

from sonicatlas.cli.common import user_errors
from sonicatlas.cli.output import format_option, storage_options_option


@click.command("assign")
@click.argument("run_dir", metavar="RUN")
@click.option("--input", "source", required=True, metavar="CATALOG",
              help="The new catalog: a Parquet file, directory or glob (any fsspec URL).")
@click.option("--out", metavar="DIR",
              help="Directory to write: assignments/, rejects/, manifest.json "
                   "(default: runs/assign-<time>).")
@click.option("--columns", "columns", multiple=True, metavar="THEIRS=OURS",
              help="Map one of the catalog's columns onto the contract, e.g. "
                   "track_artist=artist_name. Repeatable.")
@click.option("--overwrite", is_flag=True, help="Replace an existing --out.")
@click.option("--scheduler", metavar="ADDRESS",
              help="Run on this Dask scheduler (tcp://host:8786) instead of a LocalCluster.")
@format_option
@storage_options_option
@user_errors
def assign_command(run_dir, source, out, columns, overwrite, scheduler, fmt,
                   storage_options) -> None:
    """Place the songs of a new CATALOG into RUN's clusters, without refitting.

    The run's model (scaler, PCA, centres) scores every song after the same checks as
    cluster-tracks; rejected rows go to rejects/ with their reason. The summary printed is
    one row per cluster (in --format).

    \b
    Examples:
      sonicatlas assign runs/mine --input data/catalog/new-releases --out runs/new-releases
    """
    from sonicatlas.config import ClusterConfig
    from sonicatlas.discover.assign import assign_catalog, default_out
    from sonicatlas.discover.querydata import read_run_model
    from sonicatlas.errors import InputError
    from sonicatlas.runtime import connect

    mapping = {}
    for pair in columns:
        theirs, sep, ours = pair.partition("=")
        if not sep or not theirs.strip() or not ours.strip():
            raise InputError(f"--columns takes THEIRS=OURS, not {pair!r}")
        mapping[theirs.strip()] = ours.strip()
    # a bad run or model fails before a cluster starts
    read_run_model(run_dir, storage_options, purpose="tracks are placed into")
    out = out or default_out()
    echo = (lambda m: click.echo(m, err=True)) if fmt != "table" else click.echo
    config = ClusterConfig(scheduler=scheduler, dashboard_address="127.0.0.1:0")
    with connect(config, echo=echo) as client:
        result = assign_catalog(run_dir, source, out, client, mapping, overwrite,
                                storage_options)
    c = result.counts
    notes = [f"Wrote {result.out}: {c['rows_accepted']:,} songs placed, "
             f"{c['rows_rejected']:,} rejected, in {result.seconds:.1f} s"]
    from sonicatlas.cli.output import emit
    emit({"clusters": result.clusters}, fmt, None, notes, {"out": result.out, "rows": c})
