"""Artist profiles: an artist's clusters, mean sound, most typical tracks and nearest artists.

Every artist's mean standardised profile comes from one dask groupby over the run (per
partition sums and counts on the workers, combined by dask's tree reduction), so only one row
per artist reaches the client. Similar artists are the cosine between those mean profiles,
over artists with at least ``min_tracks`` tracks, ties by name.
"""

from __future__ import annotations

from dataclasses import dataclass

import dask
import dask.dataframe as dd
import numpy as np
import pandas as pd

from sonicatlas.contract import ARTIST, CLUSTER, TRACK_ID
from sonicatlas.discover.querydata import (
    QueryRun,
    open_query_run,
    read_assigned,
    read_ids,
    read_vectors,
    with_metadata,
)
from sonicatlas.discover.search import NameIndex
from sonicatlas.discover.similar import scores, similar_to, top_n
from sonicatlas.errors import InputError

TRACKS = "tracks"


@dataclass(frozen=True)
class ArtistProfile:
    """What :func:`artist_profile` found.

    Attributes
    ----------
    artist : str
        The artist's name as the run holds it.
    tracks : int
    clusters : pandas.DataFrame
        ``cluster``, ``cluster_name``, ``tracks``, ``share``; most tracks first.
    profile : pandas.DataFrame
        Per feature: ``artist_mean`` and ``catalog_mean`` (the feature's units) and ``z``
        (the artist's mean z-score: how far from the catalog's mean, in its std).
    typical : pandas.DataFrame
        The artist's tracks nearest their mean profile (``distance``), with metadata.
    similar_artists : pandas.DataFrame
        ``rank``, ``artist_name``, ``similarity``, ``tracks``.
    """

    artist: str
    tracks: int
    clusters: pd.DataFrame
    profile: pd.DataFrame
    typical: pd.DataFrame
    similar_artists: pd.DataFrame


def _artist_part(part: str, run: QueryRun) -> pd.DataFrame:
    frame = pd.DataFrame(read_vectors(run, part).astype(np.float64), columns=list(run.features))
    frame.insert(0, ARTIST, read_assigned(run, part, [ARTIST])[ARTIST].astype("string").values)
    frame[TRACKS] = np.int64(1)
    return frame


def artist_means(run: QueryRun | str) -> pd.DataFrame:
    """Every artist's track count and mean standardised profile, by a groupby on the workers.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``artist_name``: ``tracks`` and one column per feature (mean z-score).
        Tracks without an artist name are left out.
    """
    run = open_query_run(run)
    if ARTIST not in run.carried:
        raise InputError(f"{run.url} carried no {ARTIST}; artist profiles need it")
    meta = pd.DataFrame({ARTIST: pd.Series(dtype="string"),
                         **{f: pd.Series(dtype=np.float64) for f in run.features},
                         TRACKS: pd.Series(dtype=np.int64)})
    frame = dd.from_map(_artist_part, run.parts, run=run, meta=meta, label="artist-rows",
                        enforce_metadata=False)
    sums = frame.groupby(ARTIST, dropna=True).sum().compute()
    means = sums[list(run.features)].div(sums[TRACKS], axis=0)
    means.insert(0, TRACKS, sums[TRACKS].astype(np.int64))
    return means.sort_index()


def find_artist(means: pd.DataFrame, name: str) -> str:
    """The artist best matching ``name``: exact, prefix, then substring; more tracks first."""
    names = pd.DataFrame({TRACK_ID: means.index.astype(str), ARTIST: means.index.astype(str),
                          "popularity": means[TRACKS].to_numpy()})
    found = NameIndex(names).search(name, where="artist", n=1)
    if found.empty:
        raise InputError(f"no artist matches {name!r}")
    return str(found[ARTIST].iloc[0])


def similar_artists(means: pd.DataFrame, artist: str, n: int = 10, min_tracks: int = 3
                    ) -> pd.DataFrame:
    """The ``n`` artists whose mean profile has the highest cosine to ``artist``'s.

    Only artists with at least ``min_tracks`` tracks are candidates; ties by name.
    """
    pool = means[(means[TRACKS] >= min_tracks) & (means.index != artist)]
    values = scores(pool.drop(columns=[TRACKS]).to_numpy(np.float64),
                    means.loc[artist].drop(TRACKS).to_numpy(np.float64), "cosine")
    positions, names = top_n(-values, pool.index.astype(str).to_numpy(dtype=object), n)
    return pd.DataFrame({"rank": np.arange(1, len(positions) + 1),
                         ARTIST: pd.array(names, dtype="string"),
                         "similarity": values[positions],
                         TRACKS: pool[TRACKS].to_numpy()[positions]})


def _artist_rows(run: QueryRun, part: str, artist: str):
    artists = read_assigned(run, part, [ARTIST, CLUSTER])
    rows = np.flatnonzero((artists[ARTIST] == artist).fillna(False).to_numpy(dtype=bool))
    if not len(rows):
        return None
    ids = read_ids(run, part).take(rows).to_pylist()
    return pd.DataFrame({TRACK_ID: ids, CLUSTER: artists[CLUSTER].to_numpy()[rows],
                         "part": part}), read_vectors(run, part)[rows]


def artist_profile(run: QueryRun | str, name: str, n_similar: int = 10, n_typical: int = 5,
                   min_tracks: int = 3) -> ArtistProfile:
    """Profile of the artist best matching ``name`` (see :class:`ArtistProfile`).

    Raises
    ------
    InputError
        Empty name, no artist matches, or the run carried no artist names.
    """
    run = open_query_run(run)
    means = artist_means(run)
    artist = find_artist(means, name)
    task = dask.delayed(_artist_rows, pure=True)
    found = [r for r in dask.compute(*(task(run, part, artist) for part in run.parts)) if r]
    rows = pd.concat([r[0] for r in found], ignore_index=True)
    vectors = np.concatenate([r[1] for r in found])
    counts = rows[CLUSTER].value_counts()
    clusters = pd.DataFrame({CLUSTER: counts.index.to_numpy(np.int32)})
    clusters["cluster_name"] = run.cluster_name(clusters[CLUSTER]).to_numpy()
    clusters[TRACKS] = counts.to_numpy()
    clusters["share"] = clusters[TRACKS] / len(rows)
    clusters = clusters.sort_values([TRACKS, CLUSTER], ascending=[False, True],
                                    ignore_index=True)
    z = vectors.astype(np.float64).mean(axis=0)
    mean, std = np.asarray(run.model.scale_mean), np.asarray(run.model.scale_std)
    profile = pd.DataFrame({"feature": list(run.features), "artist_mean": z * std + mean,
                            "catalog_mean": mean, "z": z})
    near = similar_to(vectors, rows[TRACK_ID].to_numpy(dtype=object), z, n_typical,
                      "euclidean")
    near["part"] = rows["part"].to_numpy()[near["position"].to_numpy()]
    typical = with_metadata(run, near.drop(columns=["position"]))
    typical.insert(0, "rank", np.arange(1, len(typical) + 1))
    return ArtistProfile(artist, len(rows), clusters, profile, typical,
                         similar_artists(means, artist, n_similar, min_tracks))
