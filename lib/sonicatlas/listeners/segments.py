"""Listener segments: the tracks of a cluster-tracks run, the users' matrix, segment names.

The segment-listeners job clusters one row per user (see :mod:`sonicatlas.listeners.users`); this
module supplies what it needs around that: the run's tracks with their features and cluster,
the columns that are clustered, readable names, and per-segment profiles.
"""

from __future__ import annotations

import json

import dask.dataframe as dd
import fsspec
import numpy as np
import pandas as pd

from sonicatlas.contract import CLUSTER, FEATURES, TRACK_ID, USER_ID
from sonicatlas.errors import InputError
from sonicatlas.listeners.lookup import SharedLookup, run_lookup
from sonicatlas.summaries.profiles import FEATURE_WORDS, number_duplicates

DAYPARTS = {"late-night": range(0, 6), "morning": range(6, 12), "afternoon": range(12, 18),
            "evening": range(18, 24)}


def run_sources(run_dir: str, storage_options: dict | None = None
                ) -> tuple[dd.DataFrame, dd.DataFrame, list[str]]:
    """A cluster-tracks run's input catalog and ``assignments/``, lazily, and its cluster names.

    Returns
    -------
    catalog : dask.dataframe.DataFrame
        ``track_id`` and the features, from the input the manifest names, in the contract's
        names (the run's column mapping applied).
    assigned : dask.dataframe.DataFrame
        ``track_id``, ``cluster`` and ``artist_name`` where the run has it.
    names : list of str
        The run's cluster names, by cluster id.
    """
    storage_options = storage_options or {}
    try:
        with fsspec.open(f"{run_dir}/manifest.json", **storage_options) as handle:
            manifest = json.load(handle)
    except (OSError, ValueError) as exc:
        raise InputError(f"tracks_run {run_dir} is not a cluster-tracks run directory "
                         f"(manifest.json: {exc})") from exc
    sources = manifest["input"]["columns"]
    features = [c for c in FEATURES if c in sources]
    catalog = dd.read_parquet(manifest["input"]["url"],
                              columns=[sources[c] for c in (TRACK_ID, *features)],
                              storage_options=storage_options)
    catalog = catalog.rename(columns={sources[c]: c for c in (TRACK_ID, *features)})
    assigned = dd.read_parquet(f"{run_dir}/assignments", storage_options=storage_options)
    keep = [TRACK_ID, CLUSTER, *(["artist_name"] if "artist_name" in assigned.columns else [])]
    names = [c["name"] for c in sorted(manifest["clusters"], key=lambda c: c[CLUSTER])]
    return catalog, assigned[keep], names


def run_tracks(run_dir: str, storage_options: dict | None = None
               ) -> tuple[dd.DataFrame, list[str]]:
    """The tracks of a cluster-tracks run: track_id, features, cluster (and artist_name).

    Features come from the run's input catalog (its manifest names it and the column
    mapping), clusters from its ``assignments/``; a distributed merge joins them.

    Returns
    -------
    tracks : dask.dataframe.DataFrame
    names : list of str
        The run's cluster names, by cluster id.
    """
    catalog, assigned, names = run_sources(run_dir, storage_options)
    return assigned.merge(catalog, on=TRACK_ID, how="inner"), names


def run_track_lookup(run_dir: str, storage_options: dict | None = None, dtype=np.float32
                     ) -> tuple[SharedLookup, list[str]]:
    """Lazy: the lookup of a run's tracks (features float32 by default), and its cluster names.

    The catalog and the assignments are joined on their id hashes where the lookup is
    assembled, not by a merge that would shuffle both.
    """
    catalog, assigned, names = run_sources(run_dir, storage_options)
    features = tuple(c for c in catalog.columns if c != TRACK_ID)
    return run_lookup(catalog, assigned, features, dtype), names


def clustering_columns(n_track_clusters: int) -> list[str]:
    """The per-user columns that are scaled and clustered."""
    return [*(f"mean_{f}" for f in FEATURES),
            *(f"share_cluster_{c}" for c in range(n_track_clusters)),
            "cluster_entropy", "artist_entropy", "log_plays", "active_days", "recency_days",
            *(f"hour_{h}" for h in range(24)), *(f"weekday_{d}" for d in range(7))]


def user_matrix_frame(features: dd.DataFrame) -> dd.DataFrame:
    """Users with ``log_plays`` (plays are long-tailed) and missing entropies as 0.

    ``artist_entropy`` is missing for users whose tracks have no artist: 0 (one source).
    """
    def prepare(frame: pd.DataFrame) -> pd.DataFrame:
        out = frame.reset_index() if USER_ID not in frame.columns else frame.copy()
        out["log_plays"] = np.log1p(out["plays"])
        out["artist_entropy"] = out["artist_entropy"].fillna(0.0)
        return out
    return features.map_partitions(prepare)


#: users a partition of the users' matrix holds (about 100 MB of its float64 columns)
USERS_PER_PARTITION = 200_000


def coalesce_users(users: dd.DataFrame, n_users: int,
                   attributes: dd.DataFrame | None = None,
                   per_partition: int = USERS_PER_PARTITION
                   ) -> tuple[dd.DataFrame, dd.DataFrame | None]:
    """The users' matrix in partitions of about ``per_partition`` users, and the users table
    (if any) in no more partitions than that.

    The log's pass leaves a partition per million listens, a few thousand users each; every
    later step (KMeans passes, the merge with the users table, the writes) costs per
    partition, and a merge of many small partitions with a many-file users table costs more
    than all the rest. Partitions are only joined, never split, so nothing is shuffled.

    Parameters
    ----------
    users : dask.dataframe.DataFrame
        The users' matrix, one row per user.
    n_users : int
        Its number of rows.
    attributes : dask.dataframe.DataFrame, optional
        The users table merged into the assignments.
    per_partition : int, optional
        Users a partition should hold.

    Returns
    -------
    users, attributes : dask.dataframe.DataFrame
    """
    n = max(1, -(-n_users // per_partition))
    if users.npartitions > n:
        users = users.repartition(npartitions=n)
    if attributes is not None and attributes.npartitions > users.npartitions:
        attributes = attributes.repartition(npartitions=users.npartitions)
    return users, attributes


def name_segments(centers_z: np.ndarray, columns: list[str], track_names: list[str],
                  overrides: dict[int, str] | None = None) -> list[str]:
    """Names like "late-night Acoustic explorers" from each segment's centroid z-scores.

    The daypart is the one whose hours stand out most; the sound is the audio feature whose
    play-weighted mean stands out most; breadth is "explorers" for a high cluster entropy,
    "loyalists" for a low one. Names are made unique by numbering.
    """
    z = pd.DataFrame(np.asarray(centers_z, dtype=float), columns=columns)
    names = []
    for i, row in z.iterrows():
        if overrides and i in overrides:
            names.append(overrides[i])
            continue
        daypart = max(DAYPARTS, key=lambda p: sum(row[f"hour_{h}"] for h in DAYPARTS[p]))
        sound_col = max((f"mean_{f}" for f in FEATURES), key=lambda c: abs(row[c]))
        feature = sound_col.removeprefix("mean_")
        sound = FEATURE_WORDS[(feature, 1 if row[sound_col] >= 0 else -1)]
        breadth = ("explorers" if row["cluster_entropy"] > 0.5 else
                   "loyalists" if row["cluster_entropy"] < -0.5 else "listeners")
        heavy = "heavy " if row["log_plays"] > 1.0 else ""
        names.append(f"{daypart} {sound} {heavy}{breadth}")
    return number_duplicates(names)


def segment_profiles(scored: dd.DataFrame, columns: list[str], names: list[str]
                     ) -> pd.DataFrame:
    """Per segment: size, share, and the mean of every clustered column."""
    stats = scored.groupby(CLUSTER)[columns].mean().compute().reindex(range(len(names)))
    sizes = scored.groupby(CLUSTER).size().compute().reindex(range(len(names))).fillna(0)
    table = pd.DataFrame({CLUSTER: np.arange(len(names), dtype=np.int32), "name": names,
                          "size": sizes.to_numpy(dtype=np.int64)})
    table["share"] = table["size"] / max(table["size"].sum(), 1)
    return pd.concat([table, stats.reset_index(drop=True).add_suffix("_mean")], axis=1)
