"""The segment-listeners job end to end on generated logs with planted taste groups."""

import json
import re

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

from conftest import TEST_CLUSTER, read_table, run_job

pytestmark = pytest.mark.slow  # both jobs, end to end


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A catalog, its cluster-tracks run, and a log of 4 planted tastes with bad listens."""
    from sonicatlas.synthetic.listens import generate_listens
    from sonicatlas.synthetic.tracks import generate_tracks

    root = tmp_path_factory.mktemp("listeners")
    generate_tracks(str(root / "tracks"), rows=8_000, seed=1, rows_per_partition=4_000)
    run_job(root / "tracks-run", f"input={root / 'tracks'}", "k=6")
    generate_listens(str(root / "tracks"), str(root / "log"), users=800, listens=60_000,
                     seed=2, rows_per_partition=30_000, tastes=4)
    log = pd.read_parquet(root / "log" / "listens")
    bad = log.head(4).copy()
    bad["track_id"] = bad["track_id"].astype(object)
    bad.iloc[0, bad.columns.get_loc("track_id")] = "no-such-track"
    bad.iloc[1, bad.columns.get_loc("ts")] = pd.NaT
    bad.iloc[2, bad.columns.get_loc("user_id")] = None
    bad.iloc[3, bad.columns.get_loc("ms_played")] = 0
    bad["track_id"] = bad["track_id"].astype("string")
    (root / "log-bad").mkdir()
    bad.to_parquet(root / "log-bad" / "part.9.parquet", index=False)
    for i, path in enumerate(sorted((root / "log" / "listens").glob("*.parquet"))):
        pd.read_parquet(path).to_parquet(root / "log-bad" / f"part.{i}.parquet", index=False)
    return root, log


def test_segments_recover_the_planted_tastes_and_every_listen_is_accounted(world, tmp_path):
    from jobs.segment_listeners import Config, run
    from sonicatlas.config import load_config

    root, log = world
    config = load_config(Config, None, [
        *TEST_CLUSTER, f"listens={root / 'log-bad'}", f"users={root / 'log' / 'users'}",
        f"tracks_run={root / 'tracks-run'}", "k=4"])
    summary = run(config, out=str(tmp_path / "run"), echo=lambda *_: None)

    rejects = read_table(tmp_path / "run/summary/rejects")
    assert sorted(rejects["reason"]) == sorted(
        ["unknown track_id", "missing ts", "missing user_id", "non-positive ms_played"])
    assert summary.counts["rows_read"] == len(log) + 4
    assert summary.counts["rows_accepted"] == len(log)

    assignments = read_table(tmp_path / "run/assignments")
    assert sorted(assignments["user_id"]) == sorted(log["user_id"].unique())
    # independent reference: scikit-learn's scores of the segments against the planted
    # tastes of the generated users table
    truth = assignments[["user_id", "cluster"]].merge(
        pd.read_parquet(root / "log" / "users"), on="user_id", validate="one_to_one")
    expected = {"adjusted_rand": adjusted_rand_score(truth["taste_group"], truth["cluster"]),
                "normalized_mutual_info": normalized_mutual_info_score(truth["taste_group"],
                                                                       truth["cluster"])}
    assert expected["adjusted_rand"] > 0.8
    agreement = read_table(tmp_path / "run/summary/taste_agreement")
    manifest = json.loads((tmp_path / "run/manifest.json").read_text())
    for name, value in expected.items():
        assert agreement[name].item() == pytest.approx(value, rel=1e-9), name
        assert manifest["taste_agreement"][name] == pytest.approx(value, rel=1e-9), name
    profiles = read_table(tmp_path / "run/summary/segment_profiles")
    assert profiles["name"].is_unique and profiles["size"].sum() == len(assignments)
    # independent reference: each segment's mean log plays from the raw log, by pandas
    plays = log.groupby("user_id").size().rename("plays").reset_index()
    per_user = assignments.merge(plays, on="user_id")
    expected = np.log1p(per_user["plays"]).groupby(per_user["cluster"]).mean()
    np.testing.assert_allclose(profiles.set_index("cluster")["log_plays_mean"],
                               expected.sort_index(), rtol=1e-9)
    assert np.isclose(profiles["share"].sum(), 1.0)
    page = (tmp_path / "run/report.html").read_text()
    assert all(name in page for name in profiles["name"])
    # nothing fetched: no script, stylesheet or image comes from the network
    assert re.search(r'<(script|link|img)[^>]+(src|href)="(https?:)?//', page) is None
    assert 'data-chart="hours"' in page and 'src="data:image/png' in page


def test_k_auto_finds_the_planted_number_of_tastes(world, tmp_path):
    from jobs.segment_listeners import Config, run
    from sonicatlas.config import load_config

    root, _ = world
    config = load_config(Config, None, [
        *TEST_CLUSTER, f"listens={root / 'log' / 'listens'}", f"users={root / 'log' / 'users'}",
        f"tracks_run={root / 'tracks-run'}", "k=auto", "sweep.k_max=8"])
    summary = run(config, out=str(tmp_path / "run"), echo=lambda *_: None)
    assert summary.k == 4, read_table(tmp_path / "run/summary/k_sweep")[
        ["k", "gap", "gap_se", "stability_ari", "silhouette_mean", "null_silhouette"]]
