"""`sonicatlas export`: a run's tracks or its one-page summary."""

from __future__ import annotations

import click

from sonicatlas.cli.common import user_errors
from sonicatlas.cli.output import storage_options_option


@click.command("export")
@click.argument("run_dir", metavar="RUN")
@click.option("--cluster", metavar="NAME_OR_ID",
              help="Only this cluster: its id or its name (any case; punctuation optional). "
                   "Default: every cluster.")
@click.option("--method", metavar="METHOD",
              help="Choose --cluster by this compared method's labels (a method in the "
                   "run's compare:, e.g. gmm or dbscan; -1 is its noise).")
@click.option("--format", "fmt", type=click.Choice(["csv", "json", "parquet"]),
              help="json is JSON Lines. Default: from --out's suffix (.csv; .json, .jsonl, "
                   ".ndjson; anything else parquet).")
@click.option("--out", metavar="PATH",
              help="File (csv, json) or directory (parquet) to write; with --summary, the "
                   "markdown file (default: print it).")
@click.option("--summary", is_flag=True,
              help="Write the run's one-page markdown summary instead of tracks.")
@click.option("--overwrite", is_flag=True,
              help="Replace an existing --out if it is a sonicatlas export (its columns "
                   "include cluster and cluster_name) or summary; anything else is refused.")
@storage_options_option
@user_errors
def export_command(run_dir, cluster, method, fmt, out, summary, overwrite,
                   storage_options) -> None:
    """Export a run's tracks (one cluster or all, with the cluster name) or its summary.

    \b
    Examples:
      sonicatlas export runs/mine-k6 --cluster "calm acoustic" --out calm.csv
      sonicatlas export runs/mine-k6 --cluster 2 --format json --out cluster2.jsonl
      sonicatlas export runs/mine-k6 --out all-tracks.parquet
      sonicatlas export runs/mine-k6 --method gmm --cluster 2 --out gmm2.csv
      sonicatlas export runs/mine-k6 --summary --out mine-k6.md
    """
    from sonicatlas.runs.export import export_tracks, infer_format
    from sonicatlas.runs.summary_page import run_summary_markdown, write_run_summary

    if summary:
        if cluster is not None or fmt is not None or method is not None:
            raise click.UsageError("--summary takes no --cluster, --method or --format")
        if out is None:
            click.echo(run_summary_markdown(run_dir, storage_options=storage_options))
        else:
            written = write_run_summary(run_dir, out, overwrite=overwrite,
                                        storage_options=storage_options)
            click.echo(f"Wrote {written}")
        return
    if out is None:
        raise click.UsageError("--out is required (or pass --summary)")
    result = export_tracks(run_dir, out, cluster=cluster, format=fmt or infer_format(out),
                           overwrite=overwrite, method=method,
                           storage_options=storage_options)
    which = ("all clusters" if result.cluster is None
             else f"cluster {result.cluster} ({result.cluster_name})")
    if method is not None:
        which += f" of {method}"
    click.echo(f"Wrote {result.rows:,} tracks of {which} to {result.out} ({result.format})")

