"""`sonicatlas generate`: synthetic catalogs and listening logs at any scale."""

from __future__ import annotations

import click

from sonicatlas.cli.common import cluster_options, command_cluster, user_errors


@click.group("generate")
def generate() -> None:
    """Make synthetic data at any scale, on the workers."""


@generate.command("tracks")
@click.option("--rows", required=True, type=str, help="Tracks to make, e.g. 10_000_000.")
@click.option("--out", required=True, metavar="DIR", help="Catalog directory or fsspec URL.")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--rows-per-partition", default=1_000_000, show_default=True, type=int)
@cluster_options
@click.option("--overwrite", is_flag=True, help="Replace an existing catalog.")
@user_errors
def generate_tracks_command(rows, out, seed, rows_per_partition, overwrite, config_paths,
                            overrides, scheduler) -> None:
    """A realistic catalog: per-genre feature distributions learned from real Spotify data,
    long-tailed artists, unique ids and a ground-truth genre. Each partition is made on a
    worker from (seed, partition)."""
    from sonicatlas.runtime import connect
    from sonicatlas.synthetic.tracks import generate_tracks

    with connect(command_cluster(config_paths, overrides, scheduler), click.echo):
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
@cluster_options
@click.option("--overwrite", is_flag=True, help="Replace an existing output directory.")
@user_errors
def generate_listens_command(tracks, out, users, listens, seed, tastes, rows_per_partition,
                             overwrite, config_paths, overrides, scheduler) -> None:
    """Listening logs over a catalog: users in planted taste groups (genre mix, daily
    rhythm), sessions of popularity-weighted tracks over 90 days. Each partition is made on a
    worker from (seed, partition)."""
    from sonicatlas.runtime import connect
    from sonicatlas.synthetic.listens import generate_listens

    with connect(command_cluster(config_paths, overrides, scheduler), click.echo):
        made = generate_listens(tracks, out, users=int(users.replace("_", "")),
                                listens=int(listens.replace("_", "")), seed=seed,
                                rows_per_partition=rows_per_partition, tastes=tastes,
                                overwrite=overwrite)
    click.echo(f"Wrote {made.listens:,} listens of {made.users:,} users in "
               f"{made.npartitions} partitions to {made.out}")

