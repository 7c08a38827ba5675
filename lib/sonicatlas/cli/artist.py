"""`sonicatlas artist`: an artist's sound, clusters, typical songs and nearest artists."""

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


@click.command("artist")
@click.argument("run_dir", metavar="RUN")
@click.argument("name")
@click.option("--similar", "n_similar", default=10, show_default=True, type=int,
              help="How many similar artists to list (1..500).")
@click.option("--min-tracks", default=3, show_default=True, type=int,
              help="Similar artists have at least this many songs in the run.")
@format_option
@out_option
@scheduler_option
@storage_options_option
@user_errors
def artist_command(run_dir, name, n_similar, min_tracks, fmt, out, scheduler,
                   storage_options) -> None:
    """The profile of the artist of RUN best matching NAME (any case, accents optional).

    Their song count; the share of their songs in each cluster; their mean audio profile
    against the catalog's (z: how many standard deviations from the catalog's mean); their
    most typical songs (nearest their mean); and the most similar artists (cosine between
    artists' mean standardised profiles). With --format csv the tables are one CSV with a
    `section` column.

    \b
    Examples:
      sonicatlas artist runs/mine "beyonce"
      sonicatlas artist runs/mine "daft punk" --format json --out daft-punk.json
    """
    from sonicatlas.discover.artists import artist_profile
    from sonicatlas.discover.querydata import open_query_run
    from sonicatlas.discover.search import fold_text
    from sonicatlas.discover.similar import check_count

    fold_text(name)
    check_count(n_similar, "--similar")
    with maybe_cluster(scheduler):
        run = open_query_run(run_dir, storage_options)
        profile = artist_profile(run, name, n_similar, min_tracks=max(1, min_tracks))
    emit({"clusters": profile.clusters, "profile": profile.profile,
          "typical_tracks": profile.typical, "similar_artists": profile.similar_artists},
         fmt, out, [f"Artist: {profile.artist} ({profile.tracks:,} songs)"],
         {"artist": profile.artist, "tracks": profile.tracks})
