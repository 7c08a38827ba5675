"""Row validation: every planted bad row gets its reason; duplicates are found exactly."""

import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest

from conftest import blob_tracks
from sonicatlas.contract import FEATURES, POSITION, REASON, VALID_RANGES
from sonicatlas.io.checks import DUPLICATE, check_partition, check_rows, split, validate
from sonicatlas.io.duplicates import _by_bucket, _repeated, find_duplicates, hash_ids


def planted() -> tuple[pd.DataFrame, dict[int, str]]:
    """A clean frame with one bad row per rule; returns it and {row: expected reason}."""
    frame = blob_tracks(40, seed=1)
    frame = frame.astype({"tempo": object})  # text in a numeric column: unparsable values
    expected = {}
    frame.loc[0, "track_id"] = None
    expected[0] = "missing track_id"
    frame.loc[1, "tempo"] = "fast"
    expected[1] = "unparsable tempo"
    frame.loc[2, "energy"] = np.nan
    expected[2] = "missing energy"
    frame.loc[3, "loudness"] = np.inf
    expected[3] = "infinite loudness"
    frame.loc[4, "tempo"] = 0.0
    expected[4] = "tempo outside (0, 260]"
    frame.loc[5, "valence"] = 1.5
    expected[5] = "valence outside [0, 1]"
    frame.loc[6, "duration_ms"] = -3.0
    expected[6] = "duration_ms outside (0, 8.64e+07]"
    frame.loc[7, "loudness"] = 7.0
    expected[7] = "loudness outside [-60, 5]"
    frame.loc[8, ["energy", "tempo"]] = [np.nan, "x"]  # two problems: the first rule wins
    expected[8] = "unparsable tempo"
    return frame, expected


def test_each_planted_bad_row_gets_its_reason_and_the_rest_pass():
    frame, expected = planted()
    checked = check_partition(frame, FEATURES)
    reasons = checked[REASON]
    for row, reason in expected.items():
        assert reasons[row] == reason, row
    assert reasons.drop(index=list(expected)).isna().all()
    assert checked.loc[1, "detail"] == "'fast'"
    assert checked.loc[4, "detail"] == "0"
    assert checked["tempo"].dtype == np.float64


def test_reasons_agree_with_a_plain_range_check_on_random_values():
    rng = np.random.default_rng(0)
    frame = blob_tracks(2_000, seed=2)
    for name in FEATURES:  # push ~5% of each feature out of range
        hit = rng.random(len(frame)) < 0.05
        frame.loc[hit, name] = -1e9
    checked = check_partition(frame, FEATURES)
    valid = np.ones(len(frame), dtype=bool)
    for name, r in VALID_RANGES.items():
        valid &= r.contains(frame[name].to_numpy())
    np.testing.assert_array_equal(checked[REASON].isna().to_numpy(), valid)


def test_accepted_rows_hold_the_features_as_float32_values_read_without_a_copy():
    frame, expected = planted()
    checked = check_partition(frame, FEATURES)
    accepted, _ = split(dd.from_pandas(checked, npartitions=1), FEATURES)
    part = accepted.compute()
    assert list(part.columns) == [c for c in checked.columns if c not in (REASON, "detail")]
    assert len(part) == len(frame) - len(expected)
    names = list(FEATURES)
    assert (part[names].dtypes == np.float32).all()
    np.testing.assert_array_equal(
        part[names].to_numpy(),
        checked.drop(index=list(expected))[names].to_numpy().astype(np.float32))
    # one 2-D block: two reads of the features are views of the same memory
    assert np.shares_memory(part[names].to_numpy(), part[names].to_numpy())


def test_duplicates_match_pandas_keep_first_across_partitions():
    rng = np.random.default_rng(4)
    frame = blob_tracks(5_000, seed=3)
    frame["track_id"] = [f"id{v}" for v in rng.integers(0, 3_000, size=len(frame))]
    frame.loc[7, "energy"] = np.nan  # an invalid row never counts as the first occurrence
    accepted, rejects, _ = validate(dd.from_pandas(frame, npartitions=5), FEATURES)
    accepted, rejects = accepted.compute(), rejects.compute()
    valid = frame[check_partition(frame, FEATURES)[REASON].isna().to_numpy()]
    expected = valid.index[valid["track_id"].duplicated(keep="first").to_numpy()]
    moved = rejects[rejects[REASON] == DUPLICATE]
    assert sorted(moved.index) == sorted(expected)
    assert sorted([*accepted.index, *rejects.index]) == sorted(frame.index)  # none lost
    assert accepted["track_id"].is_unique and rejects[POSITION].is_monotonic_increasing
    # one bucket (every id compared in one task) finds the same rows as one per partition
    checked = check_rows(dd.from_pandas(frame, npartitions=5), FEATURES).persist()
    for buckets in (None, 1):
        assert sorted(find_duplicates(checked, n_buckets=buckets)) == sorted(moved[POSITION])


@pytest.mark.parametrize("blank", ["", "   "])
def test_blank_text_feature_is_missing_not_unparsable(blank):
    frame = blob_tracks(3).astype({"energy": object})
    frame.loc[1, "energy"] = blank
    assert check_partition(frame, FEATURES)[REASON][1] == "missing energy"


def fnv1a_reference(text: str) -> int:
    h = 14695981039346656037
    for byte in text.encode():
        h = ((h ^ byte) * 1099511628211) % 2**64
    return h


@pytest.mark.parametrize("dtype", [pd.StringDtype("pyarrow"), pd.StringDtype("python"), object])
def test_id_hash_is_fnv1a_of_the_utf8_bytes_even_for_slices(dtype):
    ids = pd.Series(["a", "bb", "", "ünï", "a", "x" * 40], dtype=dtype)
    expected = [fnv1a_reference(t) for t in ids]
    np.testing.assert_array_equal(hash_ids(ids), np.array(expected, dtype=np.uint64))
    np.testing.assert_array_equal(hash_ids(ids.iloc[2:]), np.array(expected[2:], np.uint64))


def test_repeated_hashes_and_bucket_order_match_numpy():
    rng = np.random.default_rng(0)
    # few distinct values, some zero in their low 40 bits (they all start probing at the same
    # slot of the table), and mostly unique ones
    pool = np.concatenate([rng.integers(0, 2**63, 50, dtype=np.uint64),
                           np.arange(1, 30, dtype=np.uint64) << np.uint64(40)])
    hashes = np.concatenate([rng.choice(pool, 500), rng.integers(0, 2**63, 500, dtype=np.uint64)])
    values, counts = np.unique(hashes, return_counts=True)
    np.testing.assert_array_equal(_repeated(hashes), np.isin(hashes, values[counts > 1]))
    positions = rng.permutation(len(hashes)).astype(np.int64)
    ordered, moved, starts = _by_bucket(hashes, positions, 7)
    buckets = hashes % np.uint64(7)
    order = np.argsort(buckets, kind="stable")
    np.testing.assert_array_equal(ordered, hashes[order])
    np.testing.assert_array_equal(moved, positions[order])
    np.testing.assert_array_equal(starts, np.searchsorted(buckets[order], np.arange(8)))


def test_every_reject_has_its_value_in_detail_missing_ones_too():
    frame = blob_tracks(6, seed=11).astype({"energy": object})
    frame["track_id"] = frame["track_id"].astype(object)
    frame.loc[0, "track_id"] = None
    frame.loc[1, "track_id"] = "  "
    frame.loc[2, "energy"] = None
    frame.loc[3, "valence"] = np.nan
    frame.loc[4, "loudness"] = -np.inf
    checked = check_partition(frame, FEATURES)
    assert checked["detail"].iloc[:5].tolist() == ["null", "'  '", "nan", "nan", "-inf"]
    assert checked[REASON].iloc[:5].tolist() == ["missing track_id", "missing track_id",
                                                 "missing energy", "missing valence",
                                                 "infinite loudness"]


def test_a_reason_given_before_the_checks_stands():
    frame = blob_tracks(4, seed=12)
    frame[REASON] = pd.array([None, "unparsable tempo", None, None], dtype="string")
    frame["detail"] = pd.array([None, "'fast'", None, None], dtype="string")
    frame.loc[1, "tempo"] = np.nan   # as the catalog reader gives the unparsable value
    frame.loc[2, "tempo"] = 999.0    # the checks' own finding
    checked = check_partition(frame, FEATURES)
    assert checked[REASON].tolist()[:3] == [pd.NA, "unparsable tempo", "tempo outside (0, 260]"]
    assert checked["detail"].tolist()[:3] == [pd.NA, "'fast'", "999"]
