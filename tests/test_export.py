"""Exporting a run's tracks and summarizing a run, checked against pandas on the same files."""

from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pytest

from conftest import blob_tracks, run_job, write_catalog
from sonicatlas.errors import InputError, OutputExistsError
from sonicatlas.runs.export import export_tracks, infer_format, resolve_cluster
from sonicatlas.runs.reading import find_run
from sonicatlas.runs.summary_page import (
    distinctive_features,
    run_summary_markdown,
    write_run_summary,
)

pytestmark = pytest.mark.slow  # exports read a run that the module makes first


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One small run for the module: 3,000 blob tracks, a few of them rejected, k=4."""
    root = tmp_path_factory.mktemp("export")
    frame = blob_tracks(3_000, groups=4, seed=3)
    frame.loc[:4, "tempo"] = np.nan
    frame.loc[5:6, "energy"] = 7.0  # outside [0, 1]
    run_job(root / "run", f"input={write_catalog(frame, root / 'catalog')}", "k=4")
    return root / "run"


@pytest.fixture(scope="module")
def assignments(run):
    return pd.read_parquet(run / "assignments")


@pytest.fixture(scope="module")
def profiles(run):
    return pd.read_parquet(run / "summary/cluster_profiles")


def _read(path, fmt):
    if fmt == "csv":
        return pd.read_csv(path, dtype={"track_id": str})
    if fmt == "json":
        return pd.read_json(path, lines=True, dtype={"track_id": str})
    return pd.read_parquet(path)


def _expected(assignments, profiles, cluster=None):
    # The reference: a pandas filter and merge, independent of the Dask code path.
    names = profiles[["cluster", "name"]].rename(columns={"name": "cluster_name"})
    chosen = assignments if cluster is None else assignments[assignments["cluster"] == cluster]
    return chosen.merge(names, on="cluster", how="left")


def _same_rows(got, want):
    from sonicatlas.contract import FEATURES

    assert list(got.columns) == ["track_id", "cluster", "cluster_name", "distance", "pc1",
                                 "pc2", *[c for c in want.columns if c not in
                                          ("track_id", "cluster", "cluster_name", "distance",
                                           "pc1", "pc2")], *FEATURES]  # features: from query/
    got = got.drop(columns=list(FEATURES))
    got = got.sort_values("track_id", ignore_index=True)
    want = want.sort_values("track_id", ignore_index=True)[list(got.columns)]
    pd.testing.assert_frame_equal(got, want, check_dtype=False, check_exact=False, rtol=1e-6)


@pytest.mark.parametrize("fmt", ["csv", "json", "parquet"])
def test_export_by_id_matches_pandas(run, assignments, profiles, tmp_path, fmt):
    cluster = int(profiles["cluster"].iloc[1])
    result = export_tracks(run, tmp_path / f"tracks.{fmt}", cluster=str(cluster), format=fmt)
    want = _expected(assignments, profiles, cluster)
    assert 0 < result.rows == len(want)
    assert result.cluster == cluster and result.format == fmt
    _same_rows(_read(result.out, fmt), want)
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"tracks.{fmt}"]  # no leftovers


def test_export_by_name_any_case_and_without_punctuation(run, assignments, profiles, tmp_path):
    name = profiles["name"].iloc[2]
    result = export_tracks(run, tmp_path / "a.csv", cluster=name.upper(), format="csv")
    assert result.cluster_name == name
    _same_rows(_read(tmp_path / "a.csv", "csv"), _expected(assignments, profiles, result.cluster))
    loose = "".join(c if c.isalnum() else " " for c in name.lower())
    assert resolve_cluster(profiles, loose)[0] == result.cluster


def test_export_all_clusters(run, assignments, profiles, tmp_path):
    result = export_tracks(run, tmp_path / "all", cluster=None)
    manifest = json.loads((run / "manifest.json").read_text())
    assert result.rows == manifest["rows"]["rows_accepted"] == len(assignments)
    _same_rows(pd.read_parquet(tmp_path / "all"), _expected(assignments, profiles))


def test_unknown_cluster_lists_choices_and_writes_nothing(run, profiles, tmp_path):
    for bad in ("no such cluster", 99, "-1"):
        with pytest.raises(InputError) as info:
            export_tracks(run, tmp_path / "out" / "x.csv", cluster=bad, format="csv")
        message = str(info.value)
        for cluster, name in zip(profiles["cluster"], profiles["name"], strict=True):
            assert f"{cluster} {name}" in message
    assert list(tmp_path.iterdir()) == []


def test_existing_output_is_kept_unless_overwrite(run, assignments, tmp_path):
    out = tmp_path / "tracks.json"
    export_tracks(run, out, cluster=1, format="json")
    with pytest.raises(OutputExistsError):
        export_tracks(run, out, cluster=0, format="json")
    assert len(pd.read_json(out, lines=True)) == int((assignments["cluster"] == 1).sum())
    result = export_tracks(run, out, cluster=0, format="json", overwrite=True)
    assert result.rows == int((assignments["cluster"] == 0).sum())
    # a Parquet directory can replace a file and the other way round
    export_tracks(run, out, cluster=0, format="parquet", overwrite=True)
    assert out.is_dir()
    export_tracks(run, out, cluster=0, format="csv", overwrite=True)
    assert out.is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tracks.json"]


def test_bad_format_and_bad_run(run, tmp_path):
    with pytest.raises(InputError, match="format"):
        export_tracks(run, tmp_path / "x", format="xlsx")
    with pytest.raises(InputError, match="not a run directory"):
        export_tracks(tmp_path, tmp_path / "x")
    assert infer_format("a/b.CSV") == "csv" and infer_format("b.jsonl") == "json"
    assert infer_format("dir") == "parquet"


def test_summary_mentions_clusters_counts_and_reasons(run, profiles, tmp_path):
    manifest = json.loads((run / "manifest.json").read_text())
    text = run_summary_markdown(run)
    rows = manifest["rows"]
    assert rows["rows_rejected"] == 7
    for key in ("rows_read", "rows_accepted", "rows_rejected"):
        assert f"{rows[key]:,}" in text
    for reason, n in rows["reject_reasons"].items():
        assert reason in text and f"| {n:,} |" in text
    for row in profiles.itertuples():
        assert f"| {row.cluster} | {row.name} | {row.size:,} |" in text
    for stage in manifest["seconds"]:
        assert f"| {stage} |" in text
    assert f"k = {manifest['k']}" in text and "assignments/" in text

    out = write_run_summary(run, tmp_path / "docs" / "summary.md")
    assert out.read_text() == text
    with pytest.raises(OutputExistsError):
        write_run_summary(run, out)


def test_distinctive_features_are_z_scores_of_the_pooled_catalog(run, profiles, assignments):
    features = ["tempo", "energy"]
    z = distinctive_features(profiles, features)
    # Recompute from the accepted input tracks themselves.
    frame = blob_tracks(3_000, groups=4, seed=3).merge(assignments[["track_id", "cluster"]])
    for f in features:
        want = (frame.groupby("cluster")[f].mean() - frame[f].mean()) / frame[f].std()
        np.testing.assert_allclose(z[f].to_numpy(), want.to_numpy(), rtol=1e-6)


def test_find_run_prefers_argument_then_env_then_newest(run, tmp_path, monkeypatch):
    monkeypatch.delenv("SONICATLAS_RUN", raising=False)
    runs = tmp_path / "runs"
    for name in ("old", "new", ".hidden.partial-1"):
        (runs / name / "assignments").mkdir(parents=True)
        (runs / name / "manifest.json").write_text("{}")
    os.utime(runs / "old/manifest.json", (1, 1))
    os.utime(runs / "new/manifest.json", (2, 2))
    monkeypatch.chdir(runs / "old")  # found from below, as from notebooks/
    assert find_run() == runs / "new"
    monkeypatch.setenv("SONICATLAS_RUN", str(run))
    assert find_run() == run
    assert find_run(runs / "old") == runs / "old"
    monkeypatch.delenv("SONICATLAS_RUN")
    with pytest.raises(InputError, match="no run directory"):
        find_run(root=tmp_path / "nothing")


def test_exports_carry_the_audio_features_and_come_most_typical_first(run, profiles, tmp_path):
    from sonicatlas.contract import FEATURES

    frame = blob_tracks(3_000, groups=4, seed=3)  # the module's catalog, as written
    name = profiles["name"].iloc[0]
    reordered = " ".join(reversed(name.replace("·", " ").split()))  # "calm acoustic"
    result = export_tracks(run, tmp_path / "c.csv", cluster=reordered, format="csv")
    got = _read(result.out, "csv")
    assert result.cluster_name == name
    assert got["distance"].is_monotonic_increasing and len(got) == result.rows
    want = frame.set_index("track_id").loc[got["track_id"], list(FEATURES)]
    # float32 z-scores and back: equal to float32 precision of each feature's spread
    np.testing.assert_allclose(got[list(FEATURES)].to_numpy(),
                               want.to_numpy().astype(np.float32), rtol=1e-5,
                               atol=1e-6 * frame[list(FEATURES)].std().to_numpy().max())
    every = pd.read_parquet(export_tracks(run, tmp_path / "all", cluster=None).out)
    assert every["cluster"].is_monotonic_increasing
    assert all(g["distance"].is_monotonic_increasing for _, g in every.groupby("cluster"))
