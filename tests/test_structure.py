"""Agreement scores from a distributed contingency table, against scikit-learn."""

import dask.array as da
import numpy as np
import pytest
from sklearn.metrics import (
    adjusted_rand_score,
    completeness_score,
    homogeneity_score,
    normalized_mutual_info_score,
)

from sonicatlas.evaluate.agreement import agreement, contingency


@pytest.mark.parametrize("noise", [False, True])
def test_agreement_equals_sklearn_on_numpy_and_dask(noise):
    rng = np.random.default_rng(1)
    truth = rng.integers(0, 5, 7_000)
    pred = np.where(rng.random(7_000) < 0.7, truth, rng.integers(0, 4, 7_000))
    if noise:
        pred[rng.random(7_000) < 0.05] = -1
    expected = {
        "adjusted_rand": adjusted_rand_score(truth, pred),
        "normalized_mutual_info": normalized_mutual_info_score(truth, pred),
        "homogeneity": homogeneity_score(truth, pred),
        "completeness": completeness_score(truth, pred),
    }
    for a, b in ((pred, truth), (da.from_array(pred, chunks=1_500),
                                 da.from_array(truth, chunks=1_500))):
        got = agreement(contingency(a, b))
        for name, value in expected.items():
            assert got[name] == pytest.approx(value, rel=1e-9, abs=1e-12), name


def _sweep_table(silhouettes, nulls, stabilities):
    import pandas as pd
    return pd.DataFrame({"k": range(2, 2 + len(silhouettes)), "silhouette_mean": silhouettes,
                         "null_silhouette": nulls, "stability_ari": stabilities})


def test_choose_k_prefers_stable_structure_above_the_null():
    from sonicatlas.config import SweepConfig
    from sonicatlas.evaluate.sweep import choose_k

    # k=3 has the best silhouette but is unstable; k=4 is stable and clearly above the null
    table = _sweep_table([0.30, 0.45, 0.40, 0.20], [0.10, 0.10, 0.10, 0.10],
                         [0.95, 0.50, 0.90, 0.99])
    assert choose_k(table, SweepConfig()) == (4, True)
    # stable only where the silhouette is no better than shuffled data: nothing is supported,
    # and the k gaining most over the null is reported as such
    table = _sweep_table([0.146, 0.161, 0.130], [0.116, 0.119, 0.128], [0.71, 0.50, 0.91])
    assert choose_k(table, SweepConfig()) == (3, False)
    assert list(table["supported"]) == [False, False, False]
