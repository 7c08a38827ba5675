"""raster.bin_points against Datashader's own aggregation of the same points."""

from __future__ import annotations

import dask.dataframe as dd
import datashader as ds
import numpy as np
import pandas as pd
import pytest

from sonicatlas.visual.raster import PixelGrid, bin_points

K = 6
GRID = PixelGrid((-3.0, 3.0), (-2.5, 3.0), width=120, height=70)


@pytest.fixture(scope="module")
def points() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    n = 50_000
    frame = pd.DataFrame({"pc1": rng.normal(size=n).astype("float32"),
                          "pc2": rng.normal(size=n).astype("float32"),
                          "cluster": rng.integers(-1, K, n),  # -1: noise, not drawn
                          "energy": rng.random(n).astype("float32"),
                          "tempo": rng.uniform(60, 200, n)})
    frame.loc[::7, "tempo"] = np.nan  # a mean skips missing values
    # points exactly on every edge, and outside the grid
    frame.loc[:3, ["pc1", "pc2"]] = [[3.0, 3.0], [-3.0, -2.5], [3.0, 0.0], [3.5, 0.0]]
    frame.loc[4, "pc1"] = np.nan
    return frame


def _datashader(frame: pd.DataFrame):
    canvas = ds.Canvas(plot_width=GRID.width, plot_height=GRID.height,
                       x_range=GRID.x_range, y_range=GRID.y_range)
    means = canvas.points(frame, "pc1", "pc2", agg=ds.summary(
        count=ds.count(), energy=ds.mean("energy"), tempo=ds.mean("tempo")))
    labelled = frame[frame["cluster"] >= 0]
    by = canvas.points(labelled.assign(cluster=pd.Categorical(labelled["cluster"],
                                                              categories=range(K))),
                       "pc1", "pc2", agg=ds.by("cluster", ds.count()))
    return means, by


@pytest.mark.slow
@pytest.mark.parametrize("partitions", [None, 7])
def test_bins_equal_datashaders(points, partitions):
    means, by = _datashader(points)
    source = points if partitions is None else dd.from_pandas(points, npartitions=partitions)
    got = bin_points(source, GRID, n_clusters=K, features=["energy", "tempo"])

    assert got["count"].dtype == means["count"].dtype
    np.testing.assert_array_equal(got["count"].values, means["count"].values)
    assert got["clusters"].dims == by.dims and got["clusters"].dtype == by.dtype
    np.testing.assert_array_equal(got["clusters"].values, by.values)
    for axis in ("pc1", "pc2"):
        np.testing.assert_array_equal(got[axis].values, means[axis].values)
    np.testing.assert_array_equal(got["cluster"].values, np.arange(K))
    for name in ("energy", "tempo"):
        # one partition sums in Datashader's order; partial sums may differ in the last bit
        rtol = 0 if partitions is None else 1e-12
        np.testing.assert_allclose(got[name].values, means[name].values, rtol=rtol)
    # points on the edges are counted (the top and right edges in the last pixel), the ones
    # outside and the NaN are not
    inside = points["pc1"].between(*GRID.x_range) & points["pc2"].between(*GRID.y_range)
    assert int(got["count"].sum()) == int(inside.sum())
    assert got["count"].values[-1, -1] >= 1 and got["count"].values[0, 0] >= 1


def test_empty_input_gives_zero_counts_and_nan_means(points):
    got = bin_points(points.iloc[:0], GRID, n_clusters=K, features=["energy"])
    assert int(got["count"].sum()) == 0 and int(got["clusters"].sum()) == 0
    assert np.isnan(got["energy"].values).all()


def test_means_where_only_some_partitions_miss_values(points):
    # a partition without a missing value keeps no count of its own for that feature:
    # combined with one that has, its points count as known
    frame = points.copy()
    frame["tempo"] = frame["tempo"].fillna(120.0)
    frame.loc[:999, "tempo"] = np.nan  # the first of five partitions only
    means, _ = _datashader(frame)
    got = bin_points(dd.from_pandas(frame, npartitions=5), GRID, n_clusters=K,
                     features=["tempo"])
    np.testing.assert_array_equal(got["count"].values, means["count"].values)
    np.testing.assert_allclose(got["tempo"].values, means["tempo"].values, rtol=1e-12)
