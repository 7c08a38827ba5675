"""Every summary table against a plain pandas computation on the same run."""

import numpy as np
import pandas as pd
import pytest

from conftest import blob_tracks, read_table, run_job, write_catalog
from sonicatlas.contract import FEATURES
from sonicatlas.summaries.profiles import name_clusters


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One run on 4,000 tracks, and the accepted tracks joined with their assignments."""
    root = tmp_path_factory.mktemp("summaries")
    frame = blob_tracks(4_000, seed=11)
    catalog = write_catalog(frame, root / "catalog", parts=4)
    run_job(root / "run", f"input={catalog}", "k=4", "names={2: Workout}")
    assignments = read_table(root / "run/assignments")
    joined = assignments[["track_id", "cluster", "distance"]].merge(frame, on="track_id")
    return root / "run", joined


@pytest.mark.slow
def test_profiles_match_pandas_groupby(run):
    path, joined = run
    profiles = read_table(path / "summary/cluster_profiles").set_index("cluster")
    # the accepted rows hold the features in float32: the reference takes the same values
    joined = joined.astype({name: np.float32 for name in FEATURES}).astype(
        {name: np.float64 for name in FEATURES})
    groups = joined.groupby("cluster")
    for name in FEATURES:
        np.testing.assert_allclose(profiles[f"{name}_mean"], groups[name].mean(), rtol=1e-9)
        np.testing.assert_allclose(profiles[f"{name}_std"], groups[name].std(), rtol=1e-9)
        # the sample holds every track here, so quartiles are exact
        np.testing.assert_allclose(profiles[f"{name}_median"], groups[name].median(), rtol=1e-9)
        np.testing.assert_allclose(profiles[f"{name}_q25"], groups[name].quantile(0.25),
                                   rtol=1e-9)
        z = (groups[name].mean() - joined[name].mean()) / joined[name].std(ddof=0)
        np.testing.assert_allclose(profiles[f"{name}_z"], z, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(profiles["popularity_mean"], groups["popularity"].mean())
    np.testing.assert_allclose(profiles["explicit_share"], groups["explicit"].mean())
    assert profiles.loc[2, "name"] == "Workout" and profiles["name"].is_unique


@pytest.mark.slow
def test_representative_tracks_are_the_nearest_to_each_centroid(run):
    path, joined = run
    table = read_table(path / "summary/representative_tracks")
    expected = joined.sort_values(["cluster", "distance", "track_id"]).groupby("cluster").head(5)
    assert list(table["track_id"]) == list(expected["track_id"])
    assert list(table["rank"]) == [1, 2, 3, 4, 5] * 4


@pytest.mark.slow
def test_feature_correlation_is_pearson_over_all_tracks(run):
    path, joined = run
    table = read_table(path / "summary/feature_correlation").set_index("feature")
    expected = joined[list(FEATURES)].corr()
    np.testing.assert_allclose(table.loc[list(FEATURES), list(FEATURES)], expected, atol=1e-6)


@pytest.mark.slow
def test_genre_and_decade_mix_match_crosstabs(run):
    path, joined = run
    genre = read_table(path / "summary/genre_mix")
    expected = pd.crosstab(joined["cluster"], joined["genre"]).stack()
    got = genre.set_index(["cluster", "genre"])["tracks"]
    pd.testing.assert_series_equal(got.sort_index(), expected[expected > 0].sort_index(),
                                   check_names=False, check_dtype=False, check_index_type=False)
    assert np.allclose(genre.groupby("cluster")["share"].sum(), 1.0)
    decade = read_table(path / "summary/decade_mix")
    decades = (joined["release_year"] // 10 * 10).astype(str) + "s"
    expected = pd.crosstab(joined["cluster"], decades).stack()
    got = decade.set_index(["cluster", "decade"])["tracks"]
    pd.testing.assert_series_equal(got.sort_index(), expected[expected > 0].sort_index(),
                                   check_names=False, check_dtype=False, check_index_type=False)


@pytest.mark.slow
def test_artist_clusters_match_pandas(run):
    path, joined = run
    table = read_table(path / "summary/artist_clusters").set_index("artist_name").sort_index()
    groups = joined.groupby("artist_name")
    np.testing.assert_array_equal(table["tracks"], groups.size().sort_index())
    shares = pd.crosstab(joined["artist_name"], joined["cluster"], normalize="index")
    for c in range(4):
        np.testing.assert_allclose(table[f"share_cluster_{c}"], shares[c].sort_index())
    np.testing.assert_allclose(table["energy"], groups["energy"].mean().sort_index())
    np.testing.assert_array_equal(table["dominant_cluster"], shares.to_numpy().argmax(axis=1))


@pytest.mark.slow
def test_album_popularity_ranks_albums_by_share_of_popular_tracks(run):
    path, joined = run
    table = read_table(path / "summary/album_popularity")
    # without an album id, an album is its (artist, name): one title, several albums
    per_album = joined.groupby(["artist_name", "album_name"]).agg(
        tracks=("popularity", "size"), popular=("popularity", lambda p: (p >= 70).mean()),
        mean=("popularity", "mean"))
    per_album = per_album[per_album["tracks"] >= 3]
    best = per_album.sort_values(["popular", "mean"], ascending=False)
    assert len(table) == min(1000, len(per_album))
    np.testing.assert_allclose(table["popular_density"], best["popular"].to_numpy())


def test_names_stay_unique_when_centroids_coincide():
    centers = np.array([[2.0, 0, 0], [2.0, 0, 0], [0, -1.5, 0.2]])
    names = name_clusters(centers, ("energy", "tempo", "valence"))
    assert len(set(names)) == 3 and names[2].startswith("Slow")


@pytest.mark.slow
def test_top_artists_are_those_with_most_tracks_in_each_cluster(run):
    path, joined = run
    table = read_table(path / "summary/top_artists")
    counts = joined.groupby(["cluster", "artist_name"]).size().rename("tracks").reset_index()
    expected = counts.sort_values(["cluster", "tracks", "artist_name"],
                                  ascending=[True, False, True]).groupby("cluster").head(10)
    assert list(table["artist_name"]) == list(expected["artist_name"])
    assert list(table["tracks"]) == list(expected["tracks"])


@pytest.mark.slow
def test_every_small_table_names_its_clusters(run):
    path, _ = run
    names = read_table(path / "summary/cluster_profiles").set_index("cluster")["name"]
    for table in ("genre_mix", "decade_mix", "representative_tracks", "top_artists"):
        frame = read_table(path / f"summary/{table}")
        assert (frame["name"] == names.loc[frame["cluster"]].to_numpy()).all(), table


def test_cluster_column_stats_match_pandas_groupby_with_gaps_and_offsets():
    import dask.dataframe as dd

    from sonicatlas.summaries.profiles import column_stats_reduction
    from sonicatlas.summaries.scan import scan

    rng = np.random.default_rng(5)
    n = 3_000
    frame = pd.DataFrame({"cluster": rng.integers(-1, 4, n).astype(np.int32),  # -1: noise
                          "duration_ms": rng.normal(2.3e5, 10.0, n),  # far from zero
                          "energy": rng.random(n).astype(np.float32),
                          "popularity": rng.integers(0, 100, n)})
    frame.loc[::13, "duration_ms"] = np.nan
    frame.loc[frame["cluster"] == 2, "energy"] = np.nan  # a column empty in one cluster
    columns = ["duration_ms", "energy", "popularity"]
    got = scan(dd.from_pandas(frame, npartitions=5),  # cluster 4: empty
               {"stats": column_stats_reduction(columns, k=5)})["stats"]
    expected = frame[frame["cluster"] >= 0].astype({"energy": np.float64}).groupby(
        "cluster").agg(["count", "mean", "std"]).reindex(range(5))
    for column in columns:
        np.testing.assert_array_equal(got[(column, "count")],
                                      expected[(column, "count")].fillna(0))
        for stat in ("mean", "std"):
            np.testing.assert_allclose(got[(column, stat)], expected[(column, stat)],
                                       rtol=1e-10)


def test_artist_table_regrouped_across_buckets_matches_pandas():
    import dask
    import dask.dataframe as dd

    from sonicatlas.summaries.mixes import artist_clusters

    rng = np.random.default_rng(5)
    n = 5_000
    frame = pd.DataFrame({
        "artist_name": pd.array([f"artist {a}" for a in rng.zipf(1.5, n) % 300],
                                dtype="string"),
        "cluster": rng.integers(-1, 3, n).astype(np.int32),  # -1: noise, in no cluster
        "energy": rng.random(n).astype(np.float32)})
    frame.loc[::97, "artist_name"] = pd.NA  # no artist: left out, as by a groupby
    with dask.config.set(scheduler="sync"):
        table = artist_clusters(dd.from_pandas(frame, npartitions=7), ("energy",), 3,
                                buckets=3)
        assert table.npartitions == 3
        table = table.compute().set_index("artist_name")
    assert table.index.is_unique
    known = frame.dropna(subset=["artist_name"])
    groups = known.groupby("artist_name")
    table = table.loc[groups.size().index]
    np.testing.assert_array_equal(table["tracks"], groups.size())
    for c in range(3):
        np.testing.assert_allclose(table[f"share_cluster_{c}"],
                                   groups["cluster"].apply(lambda s, c=c: (s == c).mean()))
    np.testing.assert_allclose(table["energy"], groups["energy"].mean().astype(float),
                               rtol=1e-6)


def test_category_mix_counts_missing_values_apart_and_skips_noise_like_a_crosstab():
    import dask
    import dask.dataframe as dd

    from sonicatlas.summaries.mixes import category_reduction
    from sonicatlas.summaries.scan import scan

    rng = np.random.default_rng(8)
    n = 4_000
    frame = pd.DataFrame({
        "genre": pd.array(rng.choice(["rock", "pop", "jazz", "latin"], n), dtype="string"),
        "cluster": rng.integers(-1, 3, n).astype(np.int32)})  # -1: noise, in no cluster
    frame.loc[::29, "genre"] = pd.NA
    frame.loc[frame["genre"] == "jazz", "cluster"] = 0  # a genre found in one cluster only
    with dask.config.set(scheduler="sync"):
        got = scan(dd.from_pandas(frame, npartitions=6),
                   {"mix": category_reduction("genre", 3)})["mix"]
    kept = frame[frame["cluster"] >= 0]
    expected = pd.crosstab(kept["cluster"], kept["genre"]).stack()  # crosstab drops NA
    expected = expected[expected > 0]
    table = got.set_index(["cluster", "genre"])
    pd.testing.assert_series_equal(table["tracks"].sort_index(), expected.sort_index(),
                                   check_names=False, check_dtype=False,
                                   check_index_type=False)
    np.testing.assert_allclose(table["share"].groupby(level="cluster").sum(), 1.0)
    missing = kept["genre"].isna().groupby(kept["cluster"])
    per_cluster = table.groupby(level="cluster")[["missing_tracks", "missing_share"]].first()
    np.testing.assert_array_equal(per_cluster["missing_tracks"], missing.sum())
    np.testing.assert_allclose(per_cluster["missing_share"], missing.mean())


@pytest.mark.parametrize("per_cluster", [1, 3, 40])
def test_nearest_per_cluster_equals_sorting_everything(per_cluster):
    from sonicatlas.summaries.profiles import _nearest_per_cluster

    rng = np.random.default_rng(per_cluster)
    n = 2_000
    frame = pd.DataFrame({
        "track_id": pd.array([f"t{i:05d}" for i in rng.permutation(n)], dtype="string"),
        "cluster": rng.integers(-1, 5, n).astype(np.int32),  # -1: noise, kept like a cluster
        "distance": np.round(rng.random(n), 2)})  # many ties at every threshold
    frame.loc[frame["cluster"] == 4, "cluster"] = 7  # a gap in the labels
    frame = frame[~((frame["cluster"] == 3) & (frame.index % 50 != 0))]  # a small cluster
    got = _nearest_per_cluster(frame, per_cluster)
    expected = frame.sort_values(["cluster", "distance", "track_id"]).groupby(
        "cluster").head(per_cluster)
    pd.testing.assert_frame_equal(got, expected)


def test_artist_clusters_count_noise_as_tracks_and_skip_missing_artists():
    import dask
    import dask.dataframe as dd

    from sonicatlas.summaries.mixes import artist_clusters

    rng = np.random.default_rng(9)
    n = 5_000
    frame = pd.DataFrame({
        "artist_name": pd.array(rng.choice([f"a{i}" for i in range(40)], n), dtype="string"),
        "cluster": rng.integers(-1, 3, n).astype(np.int32),  # -1: noise, a track in no cluster
        "energy": rng.random(n).astype(np.float32),
        "tempo": rng.normal(120, 20, n).astype(np.float32)})
    frame.loc[::31, "artist_name"] = pd.NA
    with dask.config.set(scheduler="sync"):
        table = artist_clusters(dd.from_pandas(frame, npartitions=5), ("energy", "tempo"), 3,
                                buckets=3).compute()
    table = table.set_index("artist_name").sort_index()
    known = frame.dropna(subset=["artist_name"])
    groups = known.groupby("artist_name")
    assert list(table.index) == sorted(groups.groups)
    np.testing.assert_array_equal(table["tracks"], groups.size().sort_index())
    counts = pd.crosstab(known["artist_name"], known["cluster"])
    for c in range(3):
        np.testing.assert_allclose(table[f"share_cluster_{c}"], counts[c] / groups.size())
    for name in ("energy", "tempo"):
        np.testing.assert_allclose(table[name], groups[name].mean().astype(np.float64),
                                   rtol=1e-6)
    np.testing.assert_array_equal(table["dominant_cluster"],
                                  counts[[0, 1, 2]].to_numpy().argmax(axis=1))
