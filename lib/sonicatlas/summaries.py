"""Every ``summary/`` table of a cluster-tracks run, built from the scored tracks."""

from __future__ import annotations

import dask.dataframe as dd
import numpy as np
import pandas as pd

from . import mixes, profiles, structure
from .config import SummaryConfig
from .contract import FEATURES
from .model import CLUSTER, PC1, PC2, TrackModel


def build_summaries(scored: dd.DataFrame, model: TrackModel, pca, names: list[str],
                    carry: tuple[str, ...], accepted_rows: int, config: SummaryConfig
                    ) -> dict[str, pd.DataFrame | dd.DataFrame]:
    """Name -> table for everything under ``summary/`` except rejects.

    Small tables come back as pandas; per-artist tables stay dask DataFrames, to be written
    by the workers.
    """
    features = model.features
    sample = profiles.track_sample(
        scored[[c for c in scored.columns if c in (CLUSTER, PC1, PC2, "track_id",
                                                   "track_name", "artist_name", *FEATURES)]],
        config.sample_rows, accepted_rows, model.seed)
    tables: dict[str, pd.DataFrame | dd.DataFrame] = {
        "cluster_profiles": profiles.cluster_profiles(
            scored, features, names, np.asarray(model.scale_mean),
            np.asarray(model.scale_std), sample),
        "track_sample": sample.reset_index(drop=True),
        "representative_tracks": profiles.representative_tracks(
            scored, config.representative_tracks, carry),
        "feature_correlation": profiles.feature_correlation(pca.covariance_, features),
    }
    if "genre" in carry:
        tables["genre_mix"] = mixes.category_mix(scored, "genre", model.k)
        table = tables["genre_mix"].pivot(index=CLUSTER, columns="genre", values="tracks")
        tables["genre_agreement"] = pd.DataFrame(
            [structure.agreement(table.fillna(0).to_numpy(dtype=np.int64))])
    if "release_year" in carry:
        tables["decade_mix"] = mixes.category_mix(scored, "release_year", model.k,
                                                   label=mixes.decade, name="decade")
    if config.artist_clusters and "artist_name" in carry:
        artists = mixes.artist_clusters(scored, features, model.k).persist()
        tables["artist_clusters"] = artists
        tables["top_artists"] = mixes.top_artists(artists, model.k)
    if config.album_popularity and {"album_name", "popularity"} <= set(carry):
        tables["album_popularity"] = mixes.album_popularity(scored)
    for table in tables.values():  # names next to ids, in every small table
        if isinstance(table, pd.DataFrame) and CLUSTER in table and "name" not in table:
            table.insert(table.columns.get_loc(CLUSTER) + 1, "name",
                         [names[c] if 0 <= c < len(names) else "noise" for c in table[CLUSTER]])
    return tables
