"""k: auto: the gap statistic's one-standard-error rule among stable k above the null."""

from __future__ import annotations

import json

import dask.array as da
import numpy as np
import pandas as pd
import pytest
from sklearn.cluster import KMeans as SklearnKMeans
from sklearn.preprocessing import StandardScaler

from conftest import blob_tracks, read_table, run_job, write_catalog
from sonicatlas.config import KMeansConfig, SweepConfig
from sonicatlas.contract import FEATURES
from sonicatlas.evaluate.sweep import choose_k, sweep_k


def _table(gaps, ses, silhouettes, nulls, stabilities):
    return pd.DataFrame({"k": range(2, 2 + len(gaps)), "gap": gaps, "gap_se": ses,
                         "silhouette_mean": silhouettes, "null_silhouette": nulls,
                         "stability_ari": stabilities})


def test_a_two_way_split_with_the_best_silhouette_loses_to_where_the_gap_levels_off():
    # like audio features: k=2 has the best silhouette, but the gap over shuffled data rises
    # until k=5; by hand, slack = max(se 0.007, 5% of 0.125) = 0.007: gaps from 0.118 count
    table = _table([0.070, 0.093, 0.106, 0.125, 0.117, 0.115],
                   [0.008, 0.008, 0.011, 0.007, 0.008, 0.010],
                   [0.176, 0.128, 0.134, 0.135, 0.135, 0.123],
                   [0.144, 0.089, 0.092, 0.107, 0.114, 0.105],
                   [0.94, 0.86, 0.90, 0.87, 0.52, 0.78])
    k, supported, why = choose_k(table, SweepConfig())
    assert (k, supported) == (5, True)
    assert "at k=5" in why
    assert list(table["gap_reached"]) == [False, False, False, True, False, False]


def test_an_unstable_gap_k_falls_back_to_the_nearest_supported_k():
    # the gap levels off at k=4
    table = _table([0.1, 0.3, 0.5, 0.5, 0.5], [0.01] * 5,
                   [0.30, 0.40, 0.45, 0.45, 0.44], [0.10] * 5,
                   [0.95, 0.90, 0.95, 0.95, 0.95])
    assert choose_k(table.copy(), SweepConfig())[:2] == (4, True)
    table.loc[table["k"] == 4, "stability_ari"] = 0.5
    k, supported, why = choose_k(table, SweepConfig())
    assert (k, supported) == (3, True)  # 3 and 5 are as near: the smaller
    assert "do not reproduce" in why


def test_no_supported_k_says_the_structure_is_weak_and_a_rising_gap_takes_its_top():
    table = _table([0.1, 0.2, 0.3], [0.01] * 3, [0.15, 0.16, 0.13], [0.12, 0.15, 0.12],
                   [0.7, 0.5, 0.9])
    k, supported, why = choose_k(table, SweepConfig())
    assert (k, supported) == (4, False)
    assert "at k=4" in why and "weak" in why


def _gap_by_hand(sample, k, references, seed):
    """Tibshirani et al.'s gap against shuffled copies, straight from scikit-learn."""
    log_w = np.log(SklearnKMeans(k, n_init=3, random_state=seed).fit(sample).inertia_)
    nulls = []
    for b in range(references):
        rng = np.random.default_rng([seed, 1, b])
        shuffled = np.column_stack([rng.permutation(c) for c in sample.T])
        nulls.append(np.log(SklearnKMeans(k, n_init=3, random_state=seed)
                            .fit(shuffled).inertia_))
    return np.mean(nulls) - log_w, np.std(nulls) * np.sqrt(1 + 1 / references)


def _scaled(groups, rows=3_000, seed=None):
    frame = blob_tracks(rows, groups=groups, seed=groups if seed is None else seed)
    return StandardScaler().fit_transform(frame[list(FEATURES)]).astype(np.float32)


SMALL = dict(silhouette_sample_size=1_000, silhouette_samples=1, stability_sample_size=1_000,
             null_sample_size=1_000, null_references=3)


@pytest.mark.slow
@pytest.mark.parametrize("groups", [3, 7, 12])
def test_the_sweep_recovers_the_planted_number_of_groups(groups):
    X = _scaled(groups)
    config = SweepConfig(k_max=max(12, groups + 2), **SMALL)
    result = sweep_k(da.from_array(X, chunks=(1_000, -1)), config, KMeansConfig(n_init=3), 0,
                     echo=lambda *_: None)
    assert result.k == groups, result.table[["k", "gap", "gap_se", "stability_ari"]]
    assert result.supported
    # the gap in the table is the gap statistic computed with scikit-learn alone
    from sonicatlas.estimators.arrays import sample_rows
    sample = sample_rows(da.from_array(X, chunks=(1_000, -1)), 1_000, 0)[:1_000]
    gap, se = _gap_by_hand(sample, groups, 3, 0)
    row = result.table.set_index("k").loc[groups]
    assert row["gap"] == pytest.approx(gap, rel=1e-6)
    assert row["gap_se"] == pytest.approx(se, rel=1e-6, abs=1e-9)


@pytest.mark.slow
def test_k_auto_on_the_real_catalog_is_neither_end_of_the_sweep(spotify_csv, tmp_path):
    raw = pd.read_csv(spotify_csv).drop_duplicates("track_id")
    catalog = raw.rename(columns={"track_artist": "artist_name", "playlist_genre": "genre"})[
        ["track_id", "track_name", "artist_name", "genre", *FEATURES]]
    write_catalog(catalog.reset_index(drop=True), tmp_path / "c", parts=2)
    summary = run_job(tmp_path / "run", f"input={tmp_path / 'c'}", "k=auto",
                      "sweep.silhouette_samples=2")
    sweep = read_table(tmp_path / "run/summary/k_sweep")
    assert list(sweep["k"]) == list(range(2, 13))
    assert 2 < summary.k < 12
    assert sweep.loc[sweep["chosen"], "k"].item() == summary.k
    for column in ("gap", "gap_se", "gap_reached", "stability_ari", "silhouette_mean",
                   "null_silhouette", "supported", "elbow", "sse"):
        assert sweep[column].notna().all(), column
    manifest = json.loads((tmp_path / "run/manifest.json").read_text())
    why = manifest["clustering"]["k_sweep"]["why"]
    assert f"k={summary.k}" in why
    assert f"k chosen because {why}" in summary.text()
