"""`sonicatlas similar`: the songs that sound most like one song."""

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


@click.command("similar")
@click.argument("run_dir", metavar="RUN")
@click.option("--track", "track_id", metavar="TRACK_ID", help="The query song's track id.")
@click.option("--name", metavar="TEXT",
              help="Or part of its name (any case, accents optional): the best match is the "
                   "query, and the one taken is printed.")
@click.option("--artist", metavar="TEXT", help="With --name: only songs of an artist whose "
              "name contains TEXT.")
@click.option("-n", "n", default=10, show_default=True, type=int,
              help="How many songs to list (1..500).")
@click.option("--metric", type=click.Choice(["cosine", "euclidean"]), default="cosine",
              show_default=True,
              help="cosine: similarity of the songs' standardised features (the run's own "
                   "scaler), 1 is identical; euclidean: their distance, 0 is identical.")
@click.option("--same-cluster", is_flag=True, help="Only songs of the query song's cluster.")
@format_option
@out_option
@scheduler_option
@storage_options_option
@user_errors
def similar_command(run_dir, track_id, name, artist, n, metric, same_cluster, fmt, out,
                    scheduler, storage_options) -> None:
    """The songs of RUN that sound most like one song: exact, best first, ties by track id.

    RUN is a cluster-tracks run directory (local or fsspec URL). The query song is never in
    its own result.

    \b
    Examples:
      sonicatlas similar runs/mine --track 0VjIjW4GlUZAMYd2vXMi3b
      sonicatlas similar runs/mine --name "blinding lights" --artist weeknd -n 20
      sonicatlas similar runs/mine --track 0VjIjW4GlUZAMYd2vXMi3b --metric euclidean \\
          --same-cluster --format csv > near.csv
    """
    from sonicatlas.discover.querydata import open_query_run
    from sonicatlas.discover.search import search_tracks
    from sonicatlas.discover.similar import check_count, similar_tracks
    from sonicatlas.errors import InputError

    if (track_id is None) == (name is None):
        raise click.UsageError("give --track TRACK_ID or --name TEXT")
    if artist is not None and name is None:
        raise click.UsageError("--artist goes with --name")
    check_count(n, "-n")
    with maybe_cluster(scheduler):
        run = open_query_run(run_dir, storage_options)
        if name is not None:
            best = search_tracks(run, name, where="name", n=1, artist=artist)
            if best.empty:
                by = f" by an artist matching {artist!r}" if artist else ""
                raise InputError(f"no track name matches {name!r}{by} in {run_dir}")
            track_id = str(best["track_id"].iloc[0])
        try:
            query, table = similar_tracks(run, track_id, n, metric, same_cluster)
        except InputError as error:
            if name is None and str(track_id).strip():
                raise InputError(f"{error}{_closest_names(run, track_id)}") from error
            raise
        shown = _describe(run, query)
    emit({"tracks": table}, fmt, out, [f"Query: {shown}"],
         {"query": {"track_id": query.track_id, "cluster": query.cluster}})


def _describe(run, query) -> str:
    from sonicatlas.discover.querydata import track_rows
    track_id = query.track_id
    row = track_rows(run, {query.part: [query.row]}).iloc[0]
    title = row.get("track_name")
    who = row.get("artist_name")
    text = f"{title!s}" if title is not None else track_id
    if who is not None:
        text += f" by {who!s}"
    return f"{text} ({track_id}; cluster {row['cluster']} {row['cluster_name']})"


def _closest_names(run, text: str) -> str:
    """A hint naming the tracks whose name matches ``text``, if it looks like a name."""
    from sonicatlas.discover.search import search_tracks
    from sonicatlas.errors import InputError
    try:
        found = search_tracks(run, text, where="name", n=3)
    except InputError:
        return ""
    if found.empty:
        return ""
    names = "; ".join(f"{r.get('track_name')!s} by {r.get('artist_name')!s} ({r['track_id']})"
                      for _, r in found.iterrows())
    return f"; to search by name use --name. Closest names: {names}"
