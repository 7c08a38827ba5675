"""`sonicatlas playlist`: a playlist from a cluster or from seed songs."""

from __future__ import annotations

import click

from sonicatlas.cli.common import user_errors
from sonicatlas.cli.output import (
    emit,
    format_option,
    maybe_cluster,
    out_option,
    scheduler_option,
    storage_options_option,
)


@click.command("playlist")
@click.argument("run_dir", metavar="RUN")
@click.option("--cluster", metavar="NAME_OR_ID",
              help="Songs of this cluster closest to its centre: its id or name (any case; "
                   "punctuation optional).")
@click.option("--seed-track", "seeds", multiple=True, metavar="ID",
              help="Or songs closest to the mean of these seed songs (repeatable); the seeds "
                   "themselves are left out.")
@click.option("--size", default=30, show_default=True, type=int,
              help="Songs at most (1..500). Fewer qualifying is not an error: the count is "
                   "printed.")
@click.option("--min-similarity", default=0.8, show_default=True, type=float,
              help="Lowest cosine similarity to the centre or seeds' mean (-1..1).")
@click.option("--max-per-artist", default=2, show_default=True, type=int,
              help="No artist more often than this.")
@click.option("--order", type=click.Choice(["similarity", "flow"]), default="similarity",
              show_default=True,
              help="similarity: best first; flow: from the most central song, each next the "
                   "nearest one not yet played (the mean step is printed).")
@format_option
@out_option
@scheduler_option
@storage_options_option
@user_errors
def playlist_command(run_dir, cluster, seeds, size, min_similarity, max_per_artist, order,
                     fmt, out, scheduler, storage_options) -> None:
    """A playlist from RUN: the songs most similar to a cluster's centre or to seed songs.

    Each song is at least --min-similarity to the target, no artist more than
    --max-per-artist times; listed with its similarity (and, with --order flow, its step
    from the previous song: the distance between their standardised features).

    \b
    Examples:
      sonicatlas playlist runs/mine --cluster "calm acoustic" --size 20
      sonicatlas playlist runs/mine --seed-track 0VjIjW4GlUZAMYd2vXMi3b \\
          --seed-track 7qiZfU4dY1lWllzX7mPBI3 --order flow --format json --out mix.json
    """
    from sonicatlas.discover.playlist import check_rules, make_playlist
    from sonicatlas.discover.querydata import open_query_run

    if (cluster is None) == (not seeds):
        raise click.UsageError("give --cluster NAME_OR_ID or at least one --seed-track ID")
    check_rules(size, min_similarity, max_per_artist, order)
    with maybe_cluster(scheduler):
        run = open_query_run(run_dir, storage_options)
        result = make_playlist(run, cluster, tuple(seeds), size, min_similarity,
                               max_per_artist, order)
    notes = [f"Playlist: {len(result.tracks)} songs closest to {result.target}; "
             f"{result.qualified:,} qualified (similarity >= {min_similarity:g}), at most "
             f"{max_per_artist} per artist; mean step {result.mean_step:.3f}"]
    emit({"tracks": result.tracks}, fmt, out, notes,
         {"target": result.target, "qualified": result.qualified,
          "mean_step": result.mean_step})
