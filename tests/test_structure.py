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
