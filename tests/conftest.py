"""Shared fixtures: small catalogs written as real Parquet, and a way to run jobs on them."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.cluster import KMeans as SklearnKMeans
from sklearn.decomposition import PCA as SklearnPCA
from sklearn.preprocessing import StandardScaler

from sonicatlas.contract import FEATURES, VALID_RANGES

REAL_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"
CHROMIUM = Path("/usr/bin/chromium")

# Features of the k blob centers live in the middle of each feature's valid range.
_SPAN = {name: (r.low if np.isfinite(r.low) else 0.0, r.high if np.isfinite(r.high) else 1.0)
         for name, r in VALID_RANGES.items()}
_SPAN["loudness"] = (-30.0, 0.0)
_SPAN["tempo"] = (60.0, 200.0)
_SPAN["duration_ms"] = (60_000.0, 400_000.0)


def blob_tracks(rows: int, groups: int = 4, seed: int = 0, spread: float = 0.06) -> pd.DataFrame:
    """Tracks drawn around ``groups`` centers, every feature inside its valid range."""
    rng = np.random.default_rng(seed)
    centers = rng.uniform(0.2, 0.8, size=(groups, len(FEATURES)))
    group = rng.integers(groups, size=rows)
    unit = np.clip(centers[group] + rng.normal(0, spread, (rows, len(FEATURES))), 0.0, 1.0)
    frame = pd.DataFrame({
        "track_id": [f"trk{seed:02d}{i:09d}" for i in range(rows)],
        "track_name": [f"song {i}" for i in range(rows)],
        "artist_name": [f"artist {a}" for a in rng.zipf(1.6, rows) % 400],
        "album_name": [f"album {a}" for a in rng.integers(0, max(1, rows // 6), rows)],
        "genre": pd.array([f"g{g}" for g in group], dtype="string"),
        "popularity": rng.integers(0, 101, rows),
        "release_year": rng.integers(1960, 2024, rows),
        "explicit": rng.random(rows) < 0.2,
    })
    for j, name in enumerate(FEATURES):
        low, high = _SPAN[name]
        frame[name] = np.clip(low + unit[:, j] * (high - low), low + 1e-6, high)
    return frame


def write_catalog(frame: pd.DataFrame, directory: Path, parts: int = 3) -> Path:
    """Write ``frame`` as ``parts`` Parquet files in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    for i, chunk in enumerate(np.array_split(np.arange(len(frame)), parts)):
        frame.iloc[chunk].to_parquet(directory / f"part.{i}.parquet", index=False)
    return directory


@pytest.fixture
def blob_catalog(tmp_path) -> Path:
    return write_catalog(blob_tracks(6_000), tmp_path / "catalog")


@pytest.fixture
def spotify_csv() -> Path:
    path = REAL_DATA / "spotify_songs.csv"
    if not path.exists():
        pytest.skip(f"real data not present at {path}")
    return path


#: every clustering method besides kmeans, with settings small enough for tests
ALL_METHODS = ("compare=[minibatch, gmm, agglomerative, dbscan, hdbscan, meanshift]",
               "compare_params={hdbscan: {min_cluster_size: 50}, dbscan: {min_samples: 20},"
               " meanshift: {sample_size: 500, bin_seeding: true}}")

TEST_CLUSTER = ["cluster.n_workers=2", "cluster.processes=false",
                "cluster.dashboard_address=127.0.0.1:0"]


def run_job(out: Path, *overrides: str, cluster=TEST_CLUSTER):
    """Run cluster-tracks with ``key=value`` overrides; return its summary."""
    from jobs.cluster_tracks import Config, run
    from sonicatlas.config import load_config

    config = load_config(Config, None, [*cluster, *overrides])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return run(config, out=str(out), echo=lambda *_: None)


def read_table(path: Path) -> pd.DataFrame:
    return pd.read_parquet(path)


def sklearn_reference(frame: pd.DataFrame, k: int):
    """Best-of-10 scikit-learn KMeans cost and PCA on the same scaled matrix."""
    scaled = StandardScaler().fit_transform(frame[list(FEATURES)].to_numpy(dtype=np.float64))
    kmeans = SklearnKMeans(k, n_init=10, random_state=0).fit(scaled)
    return kmeans.inertia_, SklearnPCA().fit(scaled).explained_variance_ratio_


def open_report(playwright, report: Path, errors: list, outside: list):
    """Open a report in headless Chromium once its Bokeh document is idle.

    Console errors go to ``errors`` and any request that leaves the file (the page must work
    offline) to ``outside``. Returns the browser (close it) and the page.
    """
    browser = playwright.chromium.launch(
        executable_path=str(CHROMIUM),
        args=["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
              "--disable-background-networking", "--disable-component-update"])
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    page.on("console", lambda m: m.type == "error" and errors.append(m.text))
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("request", lambda r: r.url.startswith(("file:", "data:")) or outside.append(r.url))
    page.goto(report.as_uri())
    page.wait_for_function("() => window.Bokeh && Bokeh.documents.length === 1"
                           " && Bokeh.documents[0].is_idle", timeout=30_000)
    return browser, page
