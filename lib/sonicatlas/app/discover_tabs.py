"""The explorer's Search and Playlist tabs, and the similar-songs list the map click shows.

Both tabs are thin: widgets whose values go to :class:`sonicatlas.app.discovery.Discovery`,
and tables of what it answers. What the user picked (a track, seed songs, the last playlist)
is one :class:`Picks` object that the tabs and the Export tab share.
"""

from __future__ import annotations

import functools
import logging
import re

import holoviews as hv
import pandas as pd
import panel as pn
import param

from sonicatlas.app.discovery import Discovery
from sonicatlas.contract import ARTIST, TRACK_ID
from sonicatlas.errors import InputError

log = logging.getLogger(__name__)


def table(frame: pd.DataFrame, name: str) -> pn.pane.DataFrame:
    """A small result table as plain HTML: it draws in the browser far faster than an
    interactive grid, and these tables hold tens of rows."""
    return pn.pane.DataFrame(frame, index=False, name=name, float_format="{:.4g}".format,
                             sizing_mode="stretch_width", max_rows=500)


class Picks(param.Parameterized):
    """What the user chose in the discovery tabs."""

    track = param.Integer(default=None, allow_None=True, doc="Row of the picked track")
    seeds = param.String(default="", doc="Seed track ids, one per line or comma-separated")
    playlist = param.DataFrame(default=pd.DataFrame({"rank": [], TRACK_ID: []}),
                               doc="The playlist last generated")

    def seed_ids(self) -> tuple[str, ...]:
        return tuple(s for s in re.split(r"[\s,]+", self.seeds) if s)


def message(error: Exception) -> pn.pane.Alert:
    """A user's mistake as a plain line; anything else says what failed."""
    kind = "warning" if isinstance(error, InputError) else "danger"
    return pn.pane.Alert(str(error), alert_type=kind)


def shown_safely(view):
    """``view``, whose failure shows as a message in the page (the traceback goes to the
    server's log), so one broken answer never breaks the tab."""
    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        try:
            return view(*args, **kwargs)
        except Exception as error:  # the page must keep working whatever a query hits
            if not isinstance(error, InputError):
                log.exception("explorer view %s failed", view.__name__)
            return message(error)
    return wrapper


def similar_list(discovery: Discovery, position: int, n: int = 10, metric: str = "cosine",
                 same_cluster: bool = False) -> pn.viewable.Viewable:
    """The ``n`` songs most like one track, as a table."""
    try:
        found = discovery.similar(position, n, metric, same_cluster)
    except InputError as error:
        return message(error)
    return table(found.drop(columns=["position"]), "similar")


def search_tab(discovery: Discovery, picks: Picks) -> pn.Column:
    """Search songs and artists; a picked song shows its neighbours and its artist."""
    text = pn.widgets.TextInput(name="Search songs and artists",
                                placeholder="a song or an artist, e.g. beyonce")
    where = pn.widgets.RadioButtonGroup(name="In", options=["both", "name", "artist"],
                                        value="both")
    found = pn.widgets.Select(name="Pick a result", options={}, size=8)
    status = pn.pane.Markdown("Type part of a name and press Enter.", name="search-status")

    def run_search(*_):
        if not text.value.strip():
            return
        try:
            hits = discovery.search(text.value, where.value)
        except InputError as error:
            status.object, found.options = f"**{error}**", {}
            return
        labels = {_label(row, i): int(row["position"]) for i, row in hits.iterrows()}
        status.object = (f"{len(hits)} best matches for *{text.value}*" if len(hits)
                         else f"nothing matches *{text.value}*")
        found.options = labels
        found.value = next(iter(labels.values()), None)

    text.param.watch(run_search, "value")
    where.param.watch(run_search, "value")
    found.link(picks, value="track")

    metric = pn.widgets.RadioButtonGroup(name="Metric", options=["cosine", "euclidean"],
                                         value="cosine")
    same = pn.widgets.Checkbox(name="Same cluster only")

    def neighbours(position, metric, same):
        if position is None:
            return pn.pane.Markdown("Pick a song to see the ten that sound most like it.")
        track = discovery.tracks.iloc[position]
        by = f" by {track[ARTIST]}" if str(track.get(ARTIST, "")) else ""
        title = (f"### Most like **{track.get('track_name', track[TRACK_ID])}**{by} "
                 f"(`{track[TRACK_ID]}`)")
        return pn.Column(pn.pane.Markdown(title),
                         similar_list(discovery, position, 10, metric, same))

    def add_seed(_):
        if picks.track is not None:
            new = discovery.tracks[TRACK_ID].iat[picks.track]
            if new not in picks.seed_ids():
                picks.seeds = "\n".join([*picks.seed_ids(), str(new)])

    seed = pn.widgets.Button(name="Add the song to the playlist seeds", button_type="light")
    # drawn on demand: most searches want the neighbours, and four tables cost the browser
    profile = pn.widgets.Toggle(name="Show the artist's profile", button_type="light")
    seed.on_click(add_seed)
    return pn.Column(
        pn.Row(text, where), status, found,
        pn.Row(metric, same, seed),
        pn.bind(shown_safely(neighbours), picks.param.track, metric, same),
        profile,
        pn.bind(shown_safely(lambda position, shown: artist_view(discovery, position)
                             if shown else None), picks.param.track, profile),
        name="search")


def _label(row: pd.Series, i: int) -> str:
    name = row.get("track_name", row[TRACK_ID])
    artist = f" — {row[ARTIST]}" if ARTIST in row and str(row[ARTIST]) else ""
    return f"{i + 1}. {name}{artist} ({row['match']})"


def artist_view(discovery: Discovery, position: int | None) -> pn.viewable.Viewable:
    """The picked song's artist: clusters, mean sound against the catalog, typical tracks
    and the most similar artists."""
    if position is None or ARTIST not in discovery.tracks:
        return pn.Column()
    name = str(discovery.tracks[ARTIST].iat[position])
    if not name:
        return pn.pane.Markdown("*This track has no artist name.*")
    try:
        profile = discovery.artist(name)
    except InputError as error:
        return message(error)
    z = hv.Bars(profile.profile, "feature", "z").opts(
        title=f"{name}: mean sound against the catalog's (z-scores)", invert_axes=True,
        width=520, height=300, color="#4c72b0", tools=["hover"])
    return pn.Column(
        pn.pane.Markdown(f"### Artist: {name}\n{profile.tracks:,} tracks in this run"),
        pn.Row(pn.Column(pn.pane.Markdown("**Clusters**"),
                         table(profile.clusters, "artist-clusters")),
               pn.pane.HoloViews(z)),
        pn.pane.Markdown("**Most typical tracks** (nearest the artist's mean sound)"),
        table(profile.typical, "artist-typical"),
        pn.pane.Markdown("**Most similar artists** (cosine of mean sounds; 3+ tracks)"),
        table(profile.similar_artists, "similar-artists"),
        name="artist")


def playlist_tab(discovery: Discovery, picks: Picks, names: list[str]) -> pn.Column:
    """A playlist from a cluster's centre or from seed songs, under the library's rules."""
    source = pn.widgets.RadioButtonGroup(name="From", options=["a cluster", "seed songs"],
                                         value="a cluster")
    cluster = pn.widgets.Select(name="Cluster", options=names, value=names[0] if names else None)
    seeds = pn.widgets.TextAreaInput.from_param(
        picks.param.seeds, name="Seed track ids (add them from Search)", height=90)
    size = pn.widgets.IntSlider(name="Size", start=1, end=100, value=30)
    threshold = pn.widgets.FloatSlider(name="Minimum similarity", start=-1.0, end=1.0,
                                       step=0.05, value=0.8)
    cap = pn.widgets.IntInput(name="Most tracks per artist", start=1, end=100, value=2)
    order = pn.widgets.RadioButtonGroup(name="Order", options=["similarity", "flow"],
                                        value="similarity")
    make = pn.widgets.Button(name="Generate the playlist", button_type="primary")
    result = pn.Column(pn.pane.Markdown("Choose a cluster or seed songs, then generate."),
                       name="playlist-result")

    def generate(_):
        try:
            made = discovery.playlist(
                cluster=cluster.value if source.value == "a cluster" else None,
                seeds=picks.seed_ids() if source.value == "seed songs" else (),
                size=size.value, min_similarity=threshold.value,
                max_per_artist=cap.value, order=order.value)
        except Exception as error:  # a message in the tab, never a broken page
            if not isinstance(error, InputError):
                log.exception("playlist failed")
            result.objects = [message(error)]
            return
        picks.playlist = made.tracks
        note = (f"**{len(made.tracks)} tracks** most similar to {made.target}; "
                f"{made.qualified:,} qualified (similarity ≥ {threshold.value:.2f}); "
                f"mean step {made.mean_step:.3f}")
        result.objects = [pn.pane.Markdown(note, name="playlist-summary"),
                          table(made.tracks, "playlist")]

    make.on_click(generate)
    return pn.Column(pn.Row(source, order), pn.Row(cluster, seeds),
                     pn.Row(size, threshold, cap), make, result, name="playlist-tab")
