"""What a user reads: cluster names, finding a cluster by name, representatives, wording."""

from __future__ import annotations

import dask
import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest

from sonicatlas.runs.export import resolve_cluster
from sonicatlas.summaries.digest import iterations_said
from sonicatlas.summaries.profiles import name_clusters, representative_reduction
from sonicatlas.summaries.scan import scan

FEATURES3 = ("energy", "acousticness", "liveness")


def test_a_centre_near_the_catalog_mean_is_typical_not_its_largest_tiny_deviation():
    centers = np.array([[0.05, -0.1, 0.25],     # every |z| < 0.3: nothing stands out
                        [1.2, -1.0, 0.1],
                        [-1.1, 1.4, 0.0]])
    names = name_clusters(centers, FEATURES3)
    assert names[0] == "Typical"
    assert names[1] == "High Energy · Electric" and names[2] == "Acoustic · Calm"
    assert name_clusters(np.zeros((1, 3)), FEATURES3) == ["Typical"]  # k=1


def test_a_cluster_is_found_by_its_words_in_any_order():
    profiles = pd.DataFrame({"cluster": [0, 1, 2],
                             "name": ["Acoustic · Calm", "High Energy · Danceable", "Typical"]})
    assert resolve_cluster(profiles, "calm acoustic") == (0, "Acoustic · Calm")
    assert resolve_cluster(profiles, "Danceable high energy") == (1, "High Energy · Danceable")
    assert resolve_cluster(profiles, "acoustic · calm") == (0, "Acoustic · Calm")


def test_representative_tracks_do_not_repeat_a_title_by_the_same_artist():
    # the same song on an album, a compilation and a deluxe edition sits at the centre
    frame = pd.DataFrame({
        "track_id": [f"t{i}" for i in range(12)],
        "cluster": np.array([0] * 8 + [1] * 4, dtype=np.int32),
        "distance": [0.10, 0.11, 0.12, 0.13, 0.50, 0.60, 0.70, 0.80, 0.2, 0.3, 0.4, 0.5],
        "track_name": ["Hit", "Hit", "hit ", "Other", "Hit", "B", "C", "D", "x", "y", "z", "w"],
        "artist_name": ["A", "A", "A", "A", "Cover Band", "A", "A", "A", "Q", "Q", "Q", "Q"]})
    with dask.config.set(scheduler="sync"):
        got = scan(dd.from_pandas(frame, npartitions=3),
                   {"r": representative_reduction(4, ("track_name", "artist_name"))})["r"]
    # reference: sort by distance, drop repeats of (title, artist) ignoring case, top 4
    ref = frame.sort_values(["cluster", "distance"]).assign(
        key=frame["track_name"].str.strip().str.lower() + "\0" + frame["artist_name"])
    ref = ref.drop_duplicates(["cluster", "key"]).groupby("cluster").head(4)
    assert list(got["track_id"]) == list(ref["track_id"])
    assert list(got.loc[got["cluster"] == 0, "track_name"]) == ["Hit", "Other", "Hit", "B"]
    assert list(got["rank"]) == [1, 2, 3, 4] * 2


@pytest.mark.parametrize("n, engine, said", [
    (1, "sonicatlas", "converged on a sample, then 1 full pass over every row"),
    (3, None, "converged on a sample, then 3 full passes over every row"),
    (12, "dask-ml", "seeded on a sample, then 12 full passes over every row")])
def test_the_iteration_count_says_what_happened(n, engine, said):
    assert iterations_said(n, engine) == said
