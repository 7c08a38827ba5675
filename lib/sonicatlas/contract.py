"""The track-catalog column contract: required columns, valid ranges, carried metadata.

Everything that reads, writes, generates or validates a catalog takes its column names and
ranges from here, so that the contract is stated once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

TRACK_ID = "track_id"
ARTIST = "artist_name"
GENRE = "genre"
ALBUM, ALBUM_ID = "album_name", "album_id"

#: A track with several genres (a list in the source, or the same track in several playlists)
#: carries them in one ``genre`` string joined by this separator, in first-seen order; a
#: missing genre is a null, never a word such as "unknown".
GENRE_SEPARATOR = "|"

#: Columns a run adds to every track (or user): its cluster, the cluster's name, the distance
#: to the cluster's centre, and the first two principal components.
CLUSTER, CLUSTER_NAME, DISTANCE, PC1, PC2 = "cluster", "cluster_name", "distance", "pc1", "pc2"


def method_cluster(method: str) -> str:
    """The column of ``assignments/`` holding a compared method's labels: ``cluster_gmm``
    (noise, for the density methods, is -1)."""
    return f"{CLUSTER}_{method}"


def method_silhouette(method: str) -> str:
    """The column of ``summary/silhouette`` holding a sampled track's silhouette under a
    compared method's labels: ``silhouette_gmm`` (NaN for its noise)."""
    return f"silhouette_{method}"


def projection_columns(projection: str) -> tuple[str, str]:
    """The two float32 columns of ``assignments/`` holding a map projection other than PCA's
    ``pc1``, ``pc2``: ``umap1``, ``umap2`` (likewise ``ica``, ``tsne``)."""
    return f"{projection}1", f"{projection}2"


#: Columns of a rejects table: why a row was set aside, the offending value, and where the row
#: was (partition number in the high 32 bits, row in the low 32 bits).
REASON, DETAIL, POSITION = "reason", "detail", "_pos"
#: A checked listen's row in the catalog lookup the job shares with every worker.
TRACK_ROW = "_track"

#: The listening log: who played, and when (UTC).
USER_ID, TS = "user_id", "ts"

#: The audio features every catalog must have, in the order of the feature matrix.
FEATURES: tuple[str, ...] = (
    "danceability",
    "energy",
    "loudness",
    "speechiness",
    "acousticness",
    "instrumentalness",
    "liveness",
    "valence",
    "tempo",
    "duration_ms",
)

REQUIRED: tuple[str, ...] = (TRACK_ID, *FEATURES)

#: Optional metadata carried through to a run's assignments when present in the input.
METADATA: tuple[str, ...] = (
    "track_name",
    "artist_name",
    "artist_id",
    "album_name",
    "album_id",
    "release_date",
    "release_year",
    "genre",
    "subgenre",
    "popularity",
    "explicit",
    "key",
    "mode",
    "time_signature",
)


#: Where a row came from, written by ``sonicatlas ingest`` beside every row it writes (and
#: carried into a run's rejects): the CSV file and the line the row starts on (the header is
#: line 1).
SOURCE_FILE, SOURCE_LINE = "source_file", "source_line"

#: Rows that ``sonicatlas ingest`` set aside live under ``<catalog>/_rejects/`` in Parquet files
#: with this suffix, so that catalog readers skip them; a run over the catalog counts them in.
INGEST_REJECTS_DIR, INGEST_REJECTS_SUFFIX = "_rejects", ".parquet.rejects"


@dataclass(frozen=True)
class Range:
    """A closed or half-open valid interval for one feature."""

    low: float
    high: float
    low_inclusive: bool = True
    high_inclusive: bool = True

    def contains(self, values: np.ndarray) -> np.ndarray:
        """Boolean mask of the finite values inside the interval."""
        above = values >= self.low if self.low_inclusive else values > self.low
        below = values <= self.high if self.high_inclusive else values < self.high
        return above & below

    def describe(self) -> str:
        left = "[" if self.low_inclusive else "("
        right = "]" if self.high_inclusive else ")"
        return f"{left}{self.low:g}, {self.high:g}{right}"


_UNIT = Range(0.0, 1.0)

#: A track longer than a day is not a track (the longest releases run a few hours).
DAY_MS = 86_400_000.0

#: The largest magnitude a feature may have: the clustering holds features as float32.
FLOAT32_MAX = float(np.finfo(np.float32).max)

#: Valid ranges, from the real data (see docs/architecture.md).
VALID_RANGES: dict[str, Range] = {
    "danceability": _UNIT,
    "energy": _UNIT,
    "loudness": Range(-60.0, 5.0),
    "speechiness": _UNIT,
    "acousticness": _UNIT,
    "instrumentalness": _UNIT,
    "liveness": _UNIT,
    "valence": _UNIT,
    "tempo": Range(0.0, 260.0, low_inclusive=False),
    "duration_ms": Range(0.0, DAY_MS, low_inclusive=False),
}
