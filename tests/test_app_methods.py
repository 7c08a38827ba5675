"""The explorer's cluster charts by each compared method's labels, against pandas."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from conftest import blob_tracks, run_job, write_catalog
from sonicatlas.app.data import read_run
from sonicatlas.app.views import selection_profiles

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("methods")
    catalog = write_catalog(blob_tracks(2_000, groups=3, seed=8), root / "catalog")
    run_job(root / "run", f"input={catalog}", "k=3", "compare=[gmm]",
            "compare_params={gmm: {sample_size: 1000}}")
    return root / "run"


def _raw_features(run) -> tuple[pd.DataFrame, list[str]]:
    """Assignments with each feature in its own units, from query/ and the model by hand."""
    model = json.loads((run / "model" / "model.json").read_text())
    tracks = pd.read_parquet(run / "assignments").merge(
        pd.read_parquet(run / "query"), on="track_id", suffixes=("", "_z"))
    for j, f in enumerate(model["features"]):
        z = tracks[f"{f}_z" if f"{f}_z" in tracks else f].to_numpy(np.float64)
        tracks[f] = z * model["scale_std"][j] + model["scale_mean"][j]
    return tracks, model["features"]


def test_profiles_by_a_compared_method_equal_a_pandas_groupby(run):
    data = read_run(str(run))
    assert list(data.methods) == ["gmm"]
    tracks, features = _raw_features(run)
    keep = tracks["popularity"].to_numpy() >= 50  # a filter, as the explorer's mask
    mask = pd.Index(data.tracks["track_id"]).isin(tracks.loc[keep, "track_id"])
    profiles, _ = selection_profiles(data, mask, "gmm")
    chosen = tracks[keep & (tracks["cluster_gmm"] >= 0).to_numpy()]
    expected = chosen.groupby("cluster_gmm")
    assert profiles["cluster"].tolist() == sorted(expected.groups)
    assert profiles["size"].tolist() == expected.size().tolist()
    named = pd.read_parquet(run / "summary" / "cluster_profiles_gmm").set_index("cluster")
    assert profiles["name"].tolist() == named.loc[profiles["cluster"], "name"].tolist()
    for f in features:
        assert np.allclose(profiles[f"{f}_mean"], expected[f].mean(), rtol=1e-5, atol=1e-5)


def test_kmeans_stays_the_default(run):
    data = read_run(str(run))
    profiles, _ = selection_profiles(data, np.ones(len(data.tracks), dtype=bool))
    counts = pd.read_parquet(run / "assignments")["cluster"].value_counts().sort_index()
    assert profiles["size"].tolist() == counts.tolist()
    assert profiles["name"].tolist() == data.names
