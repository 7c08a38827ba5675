"""Similar songs on the real Spotify sample, ingested and clustered, against brute force.

The real catalog holds the same recording under several track ids with identical features:
exact ties, which the answer breaks by track id. Skips without the data.
"""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from distributed import Client, LocalCluster
from test_discover_similar import brute_force, reference_matrix

from conftest import run_job, write_catalog
from sonicatlas.discover.similar import similar_tracks
from sonicatlas.io.columns import load_column_mapping
from sonicatlas.io.ingest import ingest_csv

pytestmark = pytest.mark.slow  # ingest and two runs of the real catalog

CONF = Path(__file__).resolve().parents[1] / "conf"


@pytest.fixture(scope="module")
def client():
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address="127.0.0.1:0") as cluster, Client(cluster) as c:
        yield c


@pytest.fixture(scope="module", params=[1, 4], ids=["1-partition", "4-partitions"])
def real_run(request, tmp_path_factory):
    path = Path(__file__).resolve().parents[2] / "shared/data/real/spotify_songs.csv"
    if not path.exists():
        pytest.skip(f"real data not present at {path}")
    root = tmp_path_factory.mktemp(f"real{request.param}")
    ingest_csv([str(path)], str(root / "ingested"),
               load_column_mapping(CONF / "sources/spotify_songs.yaml"))
    frame = pd.read_parquet(root / "ingested")
    catalog = write_catalog(frame, root / "catalog", parts=request.param)
    run_job(root / "run", f"input={catalog}", "k=6")
    return root / "run"


def test_real_catalog_has_exact_ties_and_similar_songs_equal_brute_force(real_run, client):
    X, ids, _ = reference_matrix(real_run)
    _, counts = np.unique(X, axis=0, return_counts=True)
    assert (counts > 1).any()  # identical feature vectors under different ids
    rng = np.random.default_rng(0)
    tied = np.flatnonzero(pd.DataFrame(X).duplicated(keep=False).to_numpy())
    for row in [*rng.choice(len(ids), 3, replace=False), tied[0]]:
        for metric in ("cosine", "euclidean"):
            _, table = similar_tracks(str(real_run), ids[row], n=12, metric=metric)
            expected, scores = brute_force(X, ids, X[row], 12, metric, exclude=ids[row],
                                           decimals=12)
            assert table["track_id"].tolist() == expected, (row, metric)
            score = "similarity" if metric == "cosine" else "distance"
            np.testing.assert_allclose(table[score], scores, rtol=1e-9, atol=1e-12)
    _, table = similar_tracks(str(real_run), ids[tied[0]], n=3)
    assert table["similarity"].iloc[0] == pytest.approx(1.0)
