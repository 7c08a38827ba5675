"""Every ``summary/`` table of a cluster-tracks run, built from the scored tracks."""

from __future__ import annotations

import dask.dataframe as dd
import numpy as np
import pandas as pd

from sonicatlas.config import SummaryConfig
from sonicatlas.contract import (
    ALBUM,
    ALBUM_ID,
    CLUSTER,
    FEATURES,
    GENRE,
    PC1,
    PC2,
    method_cluster,
)
from sonicatlas.evaluate import agreement
from sonicatlas.io.genres import split_genres
from sonicatlas.modeling.model import ClusterModel
from sonicatlas.summaries import mixes, profiles, silhouette
from sonicatlas.summaries.scan import Reduction, scan


def build_summaries(scored: dd.DataFrame, model: ClusterModel, pca, names: list[str],
                    carry: tuple[str, ...], accepted_rows: int, config: SummaryConfig,
                    also: dict[str, Reduction] | None = None, methods=()
                    ) -> tuple[dict[str, pd.DataFrame | dd.DataFrame], dict]:
    """Name -> table for everything under ``summary/`` except rejects; and ``also``'s results.

    Every table comes from one :func:`~sonicatlas.summaries.scan.scan` of ``scored``, together with
    the caller's own reductions ``also`` (the map bins): each partition is loaded once. The
    per-artist table stays a (persisted) dask DataFrame, to be written by the workers.
    The track sample carries ``cluster_<method>`` of each compared method in ``methods``, and
    ``silhouette`` scores part of it under each labelling
    (:func:`~sonicatlas.summaries.silhouette.silhouette_table`).
    """
    features, k = model.features, model.k
    sample_columns = [c for c in scored.columns
                      if c in (CLUSTER, PC1, PC2, "track_id", "track_name", "artist_name",
                               *FEATURES, *map(method_cluster, methods))]
    profiled = profiles.profile_columns(scored.columns, features)
    reductions = {
        "sample": profiles.sample_reduction(sample_columns, config.sample_rows, accepted_rows,
                                            model.seed),
        "stats": profiles.column_stats_reduction(profiled, k),
        "representative_tracks": profiles.representative_reduction(
            config.representative_tracks, carry),
        **(also or {}),
    }
    if config.artist_clusters and "artist_name" in carry:
        reductions["artist_clusters"] = mixes.artist_regroup(scored, features, k)
    if GENRE in carry:
        reductions["genre_mix"] = mixes.category_reduction(GENRE, k, split=split_genres)
    if "release_year" in carry:
        reductions["decade_mix"] = mixes.category_reduction("release_year", k,
                                                            label=mixes.decade, name="decade")
    done = scan(scored, reductions)
    sample = done.pop("sample").reset_index(drop=True)
    silhouettes = silhouette.silhouette_table(sample, features, model.scale_mean,
                                              model.scale_std, methods,
                                              config.silhouette_rows, model.seed)
    tables: dict[str, pd.DataFrame | dd.DataFrame] = {
        "cluster_profiles": profiles.cluster_profiles(
            done.pop("stats"), features, names, np.asarray(model.scale_mean),
            np.asarray(model.scale_std), sample),
        "track_sample": sample,
        "silhouette": silhouettes,
        "representative_tracks": done.pop("representative_tracks"),
        "feature_correlation": profiles.feature_correlation(pca.covariance_, features),
    }
    cluster_table = tables["cluster_profiles"]
    cluster_table[silhouette.SILHOUETTE] = silhouette.cluster_means(silhouettes,
                                                                    cluster_table[CLUSTER])
    for name in ("genre_mix", "decade_mix"):
        if name in done:
            tables[name] = done.pop(name)
    if "genre_mix" in tables:
        tables["genre_agreement"] = genre_agreement(tables["genre_mix"])
    if "artist_clusters" in done:
        tables["artist_clusters"] = artists = done.pop("artist_clusters")
        tables["top_artists"] = mixes.top_artists(artists, k)
    if (config.album_popularity and "popularity" in carry
            and {ALBUM, ALBUM_ID} & set(carry)):
        tables["album_popularity"] = mixes.album_popularity(scored)
    for table in tables.values():  # names next to ids, in every small table
        if isinstance(table, pd.DataFrame) and CLUSTER in table and "name" not in table:
            table.insert(table.columns.get_loc(CLUSTER) + 1, "name",
                         [names[c] if 0 <= c < len(names) else "noise" for c in table[CLUSTER]])
    return tables, done


def genre_agreement(genre_mix: pd.DataFrame) -> pd.DataFrame:
    """Agreement of clusters with genres over the tracks that have a genre, and their coverage.

    The contingency table is the genre mix's (a track with ``n`` genres counts ``1/n`` in
    each); tracks without a genre are left out, not counted as a genre of their own, and
    ``coverage`` says what share of the tracks the scores rest on.
    """
    table = genre_mix.pivot(index=CLUSTER, columns=GENRE, values="tracks").fillna(0)
    with_genre = float(table.to_numpy().sum())
    missing = float(genre_mix.groupby(CLUSTER)["missing_tracks"].first().sum())
    scores = agreement.agreement(table.to_numpy(dtype=np.float64)) if with_genre else {}
    return pd.DataFrame([{**scores, "tracks_with_genre": with_genre,
                          "tracks_without_genre": missing,
                          "coverage": with_genre / (with_genre + missing)
                          if with_genre + missing else np.nan}])
