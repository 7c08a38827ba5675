"""`sonicatlas ingest`: CSV exports into a Parquet catalog."""

from __future__ import annotations

import click

from sonicatlas.cli.common import cluster_options, command_cluster, user_errors


@click.command("ingest")
@click.argument("paths", nargs=-1, required=True)
@click.option("--out", required=True, metavar="DIR", help="Catalog directory to write.")
@click.option("--columns", "mapping", metavar="SRC=DST,...",
              help="Map CSV column names onto the contract, e.g. track_artist=artist_name. "
                   "The usual names (name, artist, album, year, genre, id, ...) need none.")
@click.option("--columns-file", type=click.Path(exists=True, dir_okay=False),
              help="YAML with a `columns:` mapping (see conf/sources/).")
@click.option("--id-from", metavar="COL,...",
              help="Make track_id from these columns, e.g. artist,name: 16 hex digits of "
                   "SHA-256 over their values, the same in every run.")
@click.option("--sep", metavar="CHAR", help="Field delimiter, e.g. ';' or tab (default: "
              "detected).")
@click.option("--decimal", metavar="CHAR", help="Decimal mark, e.g. ',' (default: detected).")
@cluster_options
@click.option("--overwrite", is_flag=True,
              help="Replace an existing catalog; only one sonicatlas ingest wrote is replaced.")
@user_errors
def ingest_command(paths, out, mapping, columns_file, id_from, sep, decimal, overwrite,
                   config_paths, overrides, scheduler) -> None:
    """Turn CSV exports (PATHS: files or globs, any fsspec URL) into a Parquet catalog.

    Rows that cannot be parsed go to OUT/_rejects/ with their reason, the value and their
    line; a run over OUT counts them in.
    """
    from sonicatlas.io.columns import load_column_mapping, parse_column_mapping
    from sonicatlas.io.ingest import ingest_csv
    from sonicatlas.runtime import connect

    columns = load_column_mapping(columns_file) if columns_file else {}
    columns.update(parse_column_mapping(mapping) if mapping else {})
    sep = {"\\t": "\t", "tab": "\t"}.get(sep, sep)  # a tab is hard to type in a shell
    id_columns = tuple(c.strip() for c in id_from.split(",") if c.strip()) if id_from else ()
    with connect(command_cluster(config_paths, overrides, scheduler), click.echo):
        result = ingest_csv(list(paths), out, columns, overwrite=overwrite, sep=sep,
                            decimal=decimal, id_from=id_columns)
    click.echo(f"CSV: {result.format.describe()}")
    renamed = [f"{s}->{t}" for s, t in result.columns.items() if s != t]
    click.echo(f"Columns kept: {len(result.columns)}"
               + (f" (renamed {', '.join(renamed)})" if renamed else ""))
    if id_columns:
        click.echo(f"track_id made from {', '.join(id_columns)} (stable hash)")
    click.echo(f"Columns dropped: {', '.join(result.dropped) if result.dropped else 'none'}")
    click.echo(f"Read {result.rows_read:,} rows: {result.rows_accepted:,} to {result.out}, "
               f"{result.rows_rejected:,} to {result.out}/_rejects")
    for reason, n in result.reject_reasons.items():
        click.echo(f"  {n:>10,}  {reason}")
