"""The explorer's Export tab: the selection, the current playlist and the run's summary.

Every file is written to a temporary file in slices (:func:`sonicatlas.app.downloads.write_rows`)
when the user clicks, so a 10M-track selection never becomes one string in memory.
"""

from __future__ import annotations

import tempfile

import numpy as np
import panel as pn

from sonicatlas.app.data import RunData
from sonicatlas.app.downloads import write_rows
from sonicatlas.contract import PC1, PC2


def selection_downloads(data: RunData, mask) -> pn.Row:
    """CSV and JSON-lines downloads of the tracks the filters select."""
    columns = [c for c in data.tracks.columns if c not in (PC1, PC2)]

    def saver(fmt):
        return lambda: data.access.write(mask.rx.value, columns, fmt)

    return pn.Row(
        pn.widgets.FileDownload(callback=saver("csv"), filename="tracks.csv",
                                label="Download the selection (CSV)", name="download-csv"),
        pn.widgets.FileDownload(callback=saver("json"), filename="tracks.json",
                                label="Download the selection (JSON lines)",
                                name="download-json"))


def summary_file(data: RunData) -> str:
    """The run's one-page markdown summary, written to a temporary file."""
    from sonicatlas.runs.summary_page import run_summary_markdown

    text = run_summary_markdown(data.run, storage_options=data.storage_options)
    with tempfile.NamedTemporaryFile("w", suffix=".md", delete=False,
                                     encoding="utf-8") as handle:
        handle.write(text)
    return handle.name


def export_tab(data: RunData, mask, playlist) -> pn.Column:
    """The Export tab.

    Parameters
    ----------
    data : RunData
    mask : param reference
        The filters' selection (a boolean array over ``data.tracks``).
    playlist : callable
        Returns the current playlist as a DataFrame (empty when none was generated).
    """
    def playlist_file():
        rows = playlist()  # before any playlist is generated: the header alone
        return write_rows(rows, np.arange(len(rows)), list(rows.columns), "csv")

    parts = [
        pn.pane.Markdown("### The filtered tracks\nEvery track the filters on the left keep, "
                         "with its cluster, metadata and audio features."),
        selection_downloads(data, mask),
        pn.pane.Markdown("### The playlist\nThe playlist last generated in the Playlist tab, "
                         "ranked, with its scores."),
        pn.widgets.FileDownload(callback=playlist_file, filename="playlist.csv",
                                label="Download the playlist (CSV)", name="download-playlist"),
        pn.pane.Markdown("### The run\nA one-page summary: input, rows accepted and "
                         "rejected, the clusters and what sets each apart."),
    ]
    if "://" in data.run and not data.run.startswith("file://"):
        parts.append(pn.pane.Markdown("*The summary is built from local run directories.*"))
    else:
        parts.append(pn.widgets.FileDownload(callback=lambda: summary_file(data),
                                             filename="summary.md",
                                             label="Download the run summary (Markdown)",
                                             name="download-summary"))
    return pn.Column(*parts, name="export")
