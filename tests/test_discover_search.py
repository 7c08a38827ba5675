"""Search semantics on a hand-built catalog: case, accents, partial matches, ranking."""

import pandas as pd
import pytest

from sonicatlas.discover.search import NameIndex
from sonicatlas.errors import InputError

CATALOG = pd.DataFrame([
    # track_id, track_name, artist_name, popularity
    ("t01", "Blinding Lights", "The Weeknd", 90),
    ("t02", "Blinding", "Florence + The Machine", 40),
    ("t03", "The Blinding Dark", "Someone", 95),
    ("t04", "BLINDING", "Other", 60),
    ("t05", "Halo", "Beyoncé", 85),
    ("t06", "Crazy in Love", "BEYONCE", 99),
    ("t07", "Déjà Vu", "Beyoncé", 70),
    ("t08", "Deja vu", "Olivia Rodrigo", 80),
    ("t09", "Ｂｌｉｎｄｉｎｇ Ｌｉｇｈｔｓ", "Full Width", 10),
    ("t10", "Motörhead", "Motörhead", None),
    ("t11", None, "No Title", 50),
], columns=["track_id", "track_name", "artist_name", "popularity"])


@pytest.fixture(scope="module")
def index():
    return NameIndex(CATALOG)


def ids(frame):
    return frame["track_id"].tolist()


def test_exact_then_prefix_then_substring_each_by_popularity(index):
    # exact: t04 (60) and t02 (40); prefix: t01 (90), t09 (10, full-width letters);
    # substring: t03
    assert ids(index.search("blinding", where="name")) == ["t04", "t02", "t01", "t09", "t03"]
    assert index.search("blinding", where="name")["match"].tolist() == [
        "exact", "exact", "prefix", "prefix", "substring"]


def test_case_and_accents_are_ignored_both_ways(index):
    # "beyonce" finds "Beyoncé"; "BEYONCÉ" finds "BEYONCE"; most popular first
    assert ids(index.search("beyonce", where="artist")) == ["t06", "t05", "t07"]
    assert ids(index.search("BEYONCÉ", where="artist")) == ["t06", "t05", "t07"]
    assert ids(index.search("deja vu", where="name")) == ["t08", "t07"]
    assert ids(index.search("motorhead")) == ["t10"]


def test_partial_match_inside_words(index):
    assert ids(index.search("light", where="name")) == ["t01", "t09"]
    assert ids(index.search("ights", where="name")) == ["t01", "t09"]


def test_both_takes_the_better_of_name_and_artist(index):
    found = index.search("halo")
    assert ids(found) == ["t05"]
    # "the" is a prefix of "The Weeknd", "The Blinding Dark"; inside "Florence + The ..."
    found = index.search("the", where="both")
    assert ids(found)[:2] == ["t03", "t01"] and set(found["match"][:2]) == {"prefix"}
    assert found.set_index("track_id").loc["t02", "match"] == "substring"


def test_missing_popularity_and_missing_names_sort_last_or_never_match(index):
    assert "t11" not in ids(index.search("no title", where="name"))
    assert ids(index.search("no title", where="artist")) == ["t11"]


def test_artist_filter_and_n(index):
    assert ids(index.search("blinding", where="name", artist="weeknd")) == ["t01"]
    assert len(index.search("blinding", where="name", n=2)) == 2


@pytest.mark.parametrize("text", ["", "   ", "\t"])
def test_empty_query_is_an_error(index, text):
    with pytest.raises(InputError, match="empty"):
        index.search(text)


def test_unknown_field_is_an_error(index):
    with pytest.raises(InputError, match="--in"):
        index.search("x", where="album")


def test_many_matches_rank_as_a_full_sort_by_hand():
    import numpy as np
    rng = np.random.default_rng(4)
    words = np.array(["love", "Lové", "glove", "dove", "LOVE me", "clover", "above"])
    frame = pd.DataFrame({"track_id": [f"id{i:05d}" for i in range(5_000)],
                          "track_name": rng.choice(words, 5_000),
                          "artist_name": rng.choice(["a", "b"], 5_000),
                          "popularity": rng.integers(0, 5, 5_000).astype(float)})
    frame.loc[rng.random(5_000) < 0.1, "popularity"] = np.nan
    folded = frame["track_name"].str.lower().str.replace("é", "e")
    tier = np.select([folded == "love", folded.str.startswith("love"),
                      folded.str.contains("love")], [0, 1, 2], 3)
    expected = frame.assign(tier=tier, pop=frame["popularity"].fillna(-np.inf))[tier < 3]
    expected = expected.sort_values(["tier", "pop", "track_name", "track_id"],
                                    ascending=[True, False, True, True])
    for n in (1, 7, 300, 5_000):
        got = NameIndex(frame).search("love", where="name", n=n)
        assert got["track_id"].tolist() == expected["track_id"].head(n).tolist()
