"""The real 30k Spotify sample, ingested from CSV and clustered (skips without the data)."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import read_table, run_job, sklearn_reference
from sonicatlas.contract import FEATURES
from sonicatlas.io.columns import load_column_mapping
from sonicatlas.io.ingest import ingest_csv

pytestmark = pytest.mark.slow  # the job on the real catalog

CONF = Path(__file__).resolve().parents[1] / "conf"


def test_real_catalog_matches_sklearn_and_accounts_for_every_row(spotify_csv, tmp_path):
    mapping = load_column_mapping(CONF / "sources/spotify_songs.yaml")
    ingest_csv([str(spotify_csv)], str(tmp_path / "catalog"), mapping)
    summary = run_job(tmp_path / "run", f"input={tmp_path / 'catalog'}", "k=6")

    # Independent reference: the CSV through plain pandas, the same rules by hand.
    raw = pd.read_csv(spotify_csv)
    f = raw[list(FEATURES)]
    valid = (f.drop(columns=["loudness", "tempo", "duration_ms"]).apply(
        lambda c: c.between(0, 1)).all(axis=1)
        & f["loudness"].between(-60, 5) & (f["tempo"] > 0) & (f["tempo"] <= 260)
        & (f["duration_ms"] > 0) & np.isfinite(f).all(axis=1))
    kept = raw[valid].drop_duplicates("track_id")

    assignments = read_table(tmp_path / "run/assignments")
    rejects = read_table(tmp_path / "run/summary/rejects")
    # a track in several playlists repeats its id and features: one track, all its genres;
    # only repeats whose features differ are rejected
    listed = raw[valid]
    first = listed.groupby("track_id")[list(FEATURES)].transform("first")
    same = (listed[list(FEATURES)] == first).all(axis=1)
    repeat = listed["track_id"].duplicated()
    merged = summary.counts.get("rows_merged", 0)
    assert merged == (repeat & same).sum() > 0
    assert len(assignments) + len(rejects) + merged == len(raw)
    assert sorted(assignments["track_id"]) == sorted(kept["track_id"])
    assert (rejects["reason"] == "duplicate track_id").sum() == (repeat & ~same).sum()
    genres = listed.groupby("track_id")["playlist_genre"].agg(lambda g: set(g.dropna()))
    pooled = assignments.set_index("track_id")["genre"].astype(str).str.split("|").map(set)
    several = genres[genres.map(len) > 1].index
    assert (pooled.loc[several] == genres.loc[several]).all()

    best_cost, ratios = sklearn_reference(kept, 6)
    assert summary.inertia <= best_cost * 1.01
    pca = read_table(tmp_path / "run/summary/pca")
    np.testing.assert_allclose(pca["explained_variance_ratio"], ratios, atol=1e-6)
    assert {"track_name", "artist_name", "genre"} <= set(assignments.columns)
