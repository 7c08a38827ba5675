"""`sonicatlas search`: songs by part of their name or their artist's."""

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


@click.command("search")
@click.argument("run_dir", metavar="RUN")
@click.argument("text")
@click.option("--in", "where", type=click.Choice(["name", "artist", "both"]), default="both",
              show_default=True, help="Match the song's name, its artist's, or either.")
@click.option("-n", "n", default=20, show_default=True, type=int,
              help="How many songs to list (1..500).")
@format_option
@out_option
@scheduler_option
@storage_options_option
@user_errors
def search_command(run_dir, text, where, n, fmt, out, scheduler,
                   storage_options) -> None:
    """Songs of RUN whose name or artist contains TEXT, any case, accents optional.

    "beyonce" finds "Beyoncé", "blinding" finds "Blinding Lights". Exact matches first, then
    names starting with TEXT, then names containing it; within each, the most popular first.

    \b
    Examples:
      sonicatlas search runs/mine "blinding"
      sonicatlas search runs/mine beyonce --in artist -n 50 --format csv > beyonce.csv
    """
    from sonicatlas.discover.querydata import open_query_run
    from sonicatlas.discover.search import fold_text, search_tracks
    from sonicatlas.discover.similar import check_count

    fold_text(text)
    check_count(n, "-n")
    with maybe_cluster(scheduler):
        found = search_tracks(open_query_run(run_dir, storage_options), text, where, n)
    emit({"tracks": found}, fmt, out, [f"{len(found)} songs match {text!r}"])
