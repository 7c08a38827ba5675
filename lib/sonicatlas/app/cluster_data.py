"""A run too large for one process, held on a Dask cluster for the explorer.

Each part of the run (``assignments/`` part ``i`` and ``query/`` part ``i``, row for row) is
read by a worker into one partition shaped as :func:`sonicatlas.app.data.tidy_tracks` shapes
the local table, with the audio features in their own units; the partitions stay persisted
on the workers, and the views reach them through
:class:`sonicatlas.app.access.ClusterTracks`. The summary tables are small and read here.
"""

from __future__ import annotations

import functools

import dask
import dask.dataframe as dd
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from dask.dataframe.utils import clear_known_categories

from sonicatlas.app.access import ClusterTracks
from sonicatlas.app.data import (
    TEXT,
    RunData,
    cluster_names,
    method_names,
    read_manifest,
    read_table,
    reject_counts,
    run_fs,
    tidy_tracks,
)
from sonicatlas.discover.querydata import MAKE_RUN, QueryRun, open_query_run
from sonicatlas.errors import InputError


def read_part(run: QueryRun, names: list[str], part: str) -> pd.DataFrame:
    """One part of the run as the explorer's tracks: tidied, with its features' own units."""
    tracks = tidy_tracks(pq.read_table(run.assignments_file(part), filesystem=run.fs)
                         .to_pandas(), names)
    features = list(run.features)
    query = pq.read_table(run.query_file(part), columns=features, filesystem=run.fs)
    if query.num_rows != len(tracks):
        raise InputError(f"{run.url}: query/{part} and assignments/{part} hold different "
                         f"rows; re-run {MAKE_RUN}")
    mean, std = run.model.scale_mean, run.model.scale_std
    for j, feature in enumerate(features):
        column = query.column(feature).to_numpy().astype(np.float64)
        tracks[feature] = (column * std[j] + mean[j]).astype(np.float32)
    return tracks


def _genre_labels(part: pd.DataFrame, mask) -> set[str]:
    return set(part["genre"].cat.categories.astype(str))


def read_run_on_cluster(run: str, storage_options: dict | None = None) -> RunData:
    """Open a cluster-tracks run on the current Dask client, its tracks persisted there.

    Parameters
    ----------
    run : str
        Run directory, local or fsspec URL, that the workers can read.
    storage_options : dict, optional

    Returns
    -------
    RunData
        ``tracks`` is a dask DataFrame, ``access`` a
        :class:`~sonicatlas.app.access.ClusterTracks`; ``vectors`` is None (similar songs and
        playlists run over the run's files on the cluster).

    Raises
    ------
    InputError
        Not a cluster-tracks run, no query data, or a table that cannot be read (named).
    """
    fs, root = run_fs(run, storage_options)
    manifest = read_manifest(fs, root, run)
    query_run = open_query_run(run, storage_options)
    profiles = read_table(fs, root, "summary/cluster_profiles")
    names = cluster_names(profiles)
    load = functools.partial(read_part, query_run, names)
    meta = dask.delayed(load)(query_run.parts[0]).compute().iloc[:0]
    text = [c for c in TEXT if c in meta]
    meta = clear_known_categories(meta, cols=text) if text else meta
    tracks = dd.from_map(load, list(query_run.parts), meta=meta, enforce_metadata=False)
    tracks = tracks.persist()
    access = ClusterTracks(tracks, int(tracks.map_partitions(len).compute().sum()))
    genres = None
    if "genre" in meta:
        genres = sorted(access.reduce(None, _genre_labels, lambda sets: set().union(*sets)))
    return RunData(run, tracks, names, manifest, profiles, reject_counts(fs, root),
                   list(query_run.features), None, method_names(fs, root, meta),
                   storage_options=dict(storage_options or {}), access=access,
                   genre_labels=genres)
