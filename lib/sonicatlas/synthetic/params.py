"""Per-genre generator parameters: learn them from the real Spotify songs CSV, and sample them.

Each genre gets a Gaussian copula: marginal quantiles of every column, taken in a transformed
space (logit for 0..1 features, log for duration, identity otherwise) at fixed normal-score knots,
plus the correlation matrix of the columns' normal scores. Instrumentalness is zero-inflated, so
its small values are a point mass and only the rest has quantiles. :class:`CopulaSampler` draws
from the stored parameters.
"""

from __future__ import annotations

import json
import re
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.special import expit, logit, ndtr, ndtri
from scipy.stats import rankdata

from sonicatlas.contract import FEATURES, TRACK_ID, VALID_RANGES

#: Columns modelled jointly by the copula: the audio features, then two metadata columns.
COLUMNS: tuple[str, ...] = (*FEATURES, "popularity", "release_year")

#: Transformed space each column's quantiles live in.
TRANSFORMS: dict[str, str] = {
    **{f: "logit" for f in FEATURES if VALID_RANGES[f].low == 0.0 and VALID_RANGES[f].high == 1.0},
    "duration_ms": "log",
    "loudness": "identity",
    "tempo": "identity",
    "popularity": "identity",
    "release_year": "identity",
}

#: Normal scores at which the quantile functions are stored; uniform in z so that the tails,
#: where the features are skewed, get as many knots as the middle.
Z_KNOTS: tuple[float, ...] = tuple(float(z) for z in np.linspace(-3.5, 3.5, 15))

#: Values below this are modelled as an exact zero (a point mass).
ZERO_INFLATED: dict[str, float] = {"instrumentalness": 1e-3}

_LOGIT_EPS = 1e-4
_SOURCE_COLUMNS = {"playlist_genre": "genre", "track_popularity": "popularity"}
PARAMS_FILE = "genre_params.json"


def forward(values: np.ndarray, transform: str) -> np.ndarray:
    """Map values into the transformed space used by the copula marginals."""
    if transform == "logit":
        return logit(np.clip(values, _LOGIT_EPS, 1.0 - _LOGIT_EPS))
    if transform == "log":
        return np.log(values)
    return np.asarray(values, dtype=np.float64)


def read_real_tracks(csv_path: str | Path) -> pd.DataFrame:
    """Read the real CSV, one row per track, with every feature inside its valid range.

    Parameters
    ----------
    csv_path : str or Path
        The Spotify songs CSV (``playlist_genre``, ``track_popularity``, the features and
        ``track_album_release_date``).

    Returns
    -------
    pandas.DataFrame
        Deduplicated by track_id (first occurrence kept), with ``genre``, ``popularity`` and an
        integer ``release_year`` column.
    """
    df = pd.read_csv(csv_path).drop_duplicates(TRACK_ID).rename(columns=_SOURCE_COLUMNS)
    df["release_year"] = pd.to_numeric(
        df["track_album_release_date"].astype(str).str[:4], errors="coerce"
    )
    df = df.dropna(subset=[*COLUMNS, "genre"])
    keep = np.ones(len(df), dtype=bool)
    for feature in FEATURES:
        keep &= VALID_RANGES[feature].contains(df[feature].to_numpy(dtype=np.float64))
    return df[keep].reset_index(drop=True)


def _normal_scores(values: np.ndarray) -> np.ndarray:
    # Ties (the zero mass) share their average rank, which keeps the correlation estimate sane.
    return ndtri(rankdata(values) / (len(values) + 1))


def _nearest_correlation(corr: np.ndarray, floor: float = 1e-4) -> np.ndarray:
    # Rounding can leave a correlation matrix slightly indefinite; clip eigenvalues and rescale.
    vals, vecs = np.linalg.eigh((corr + corr.T) / 2)
    fixed = (vecs * np.maximum(vals, floor)) @ vecs.T
    scale = np.sqrt(np.diag(fixed))
    return fixed / np.outer(scale, scale)


def _fit_genre(frame: pd.DataFrame) -> dict:
    probs = ndtr(np.asarray(Z_KNOTS))
    quantiles: dict[str, list[float]] = {}
    p_zero: dict[str, float] = {}
    for column in COLUMNS:
        values = frame[column].to_numpy(dtype=np.float64)
        if column in ZERO_INFLATED:
            small = values < ZERO_INFLATED[column]
            p_zero[column] = round(float(small.mean()), 5)
            values = values[~small]
        q = np.quantile(forward(values, TRANSFORMS[column]), probs)
        quantiles[column] = [round(float(v), 3) for v in q]
    scores = np.column_stack([_normal_scores(frame[c].to_numpy(dtype=np.float64)) for c in COLUMNS])
    corr = _nearest_correlation(np.corrcoef(scores, rowvar=False))
    return {
        "tracks": len(frame),
        "p_zero": p_zero,
        "quantiles": quantiles,
        "corr_upper": [round(float(v), 3) for v in corr[np.triu_indices(len(corr), 1)]],
    }


def learn_genre_params(csv_path: str | Path) -> dict:
    """Learn the per-genre generator parameters from the real CSV.

    Parameters
    ----------
    csv_path : str or Path
        Path to ``spotify_songs.csv``.

    Returns
    -------
    dict
        JSON-serialisable: ``columns``, ``transforms``, ``z_knots``, ``zero_threshold`` and, per
        genre, its ``share`` of tracks, ``p_zero`` (point-mass probabilities), ``quantiles``
        (per column, in the transformed space, at ``z_knots``) and ``corr_upper``, the strict
        upper triangle (row-major) of the normal scores' correlation matrix.
    """
    df = read_real_tracks(csv_path)
    genres = {}
    for genre, frame in sorted(df.groupby("genre"), key=lambda item: str(item[0])):
        genres[str(genre)] = {"share": round(len(frame) / len(df), 5), **_fit_genre(frame)}
    return {
        "source": f"{Path(csv_path).name}: {len(df)} unique tracks",
        "columns": list(COLUMNS),
        "transforms": {c: TRANSFORMS[c] for c in COLUMNS},
        "z_knots": [round(z, 4) for z in Z_KNOTS],
        "zero_threshold": ZERO_INFLATED,
        "genres": genres,
    }


def dump_params(params: dict, path: str | Path) -> None:
    """Write parameters as JSON with each numeric list on one line (small, diffable)."""
    text = json.dumps(params, indent=1)
    text = re.sub(r"\[\s+([^\[\]{}]*?)\s+\]", lambda m: "[" + re.sub(r"\s+", " ", m[1]) + "]", text)
    Path(path).write_text(text + "\n")


def correlation(genre_params: dict) -> np.ndarray:
    """The full correlation matrix of one genre, from its stored upper triangle."""
    upper = np.asarray(genre_params["corr_upper"])
    size = int(round((1 + np.sqrt(1 + 8 * len(upper))) / 2))
    corr, (rows, cols) = np.eye(size), np.triu_indices(size, 1)
    corr[rows, cols] = corr[cols, rows] = upper
    return corr


def load_genre_params() -> dict:
    """Load the parameters shipped with the package (``sonicatlas/data/genre_params.json``)."""
    return json.loads(resources.files("sonicatlas").joinpath("data", PARAMS_FILE).read_text())


class CopulaSampler:
    """Draws the copula columns for tracks of known genres, from learned parameters.

    Parameters
    ----------
    params : dict
        As returned by :func:`learn_genre_params` or :func:`load_genre_params`.
    """

    #: Rows per chunk: keeps the scatter from genre blocks back to row order in the CPU cache.
    chunk = 2**14

    def __init__(self, params: dict):
        self.columns: list[str] = list(params["columns"])
        self.transforms: dict[str, str] = dict(params["transforms"])
        self.genres: list[str] = list(params["genres"])
        shares = np.array([params["genres"][g]["share"] for g in self.genres])
        #: Cumulative genre shares, for drawing genres by inverse CDF.
        self.cum_shares = np.cumsum(shares) / shares.sum()
        z_knots = np.asarray(params["z_knots"])
        self._grid = (z_knots[0], z_knots[1] - z_knots[0], len(z_knots))
        self._per_genre = [self._prepare(params["genres"][g], z_knots) for g in self.genres]

    def _prepare(self, genre: dict, z_knots: np.ndarray) -> dict:
        vals, vecs = np.linalg.eigh(correlation(genre))  # rounded in the JSON: keep it PD
        q = np.array([genre["quantiles"][c] for c in self.columns])
        zero_inflated = {}
        for j, column in enumerate(self.columns):
            if p0 := genre["p_zero"].get(column, 0.0):
                # The zero mass takes the bottom p0 of the latent normal and the rest is squeezed
                # above it: non-uniform knots, so np.interp rather than the uniform-grid lookup.
                zero_inflated[j] = (ndtri(p0), ndtri(p0 + (1 - p0) * ndtr(z_knots)), q[j])
        return {
            "chol": np.linalg.cholesky((vecs * np.maximum(vals, 1e-6)) @ vecs.T),
            "q": q.ravel(),
            "dq": np.diff(q, append=q[:, -1:]).ravel(),
            "zero_inflated": zero_inflated,
        }

    def sample(self, rng: np.random.Generator, genre: np.ndarray) -> np.ndarray:
        """Draw one row of values per track.

        Parameters
        ----------
        rng : numpy.random.Generator
            Source of randomness; the draws depend only on it and ``genre``.
        genre : numpy.ndarray
            Genre index (into ``self.genres``) of each track.

        Returns
        -------
        numpy.ndarray
            Shape ``(len(self.columns), len(genre))``, in the original units; features inside
            VALID_RANGES, popularity and release_year rounded to whole numbers.
        """
        out = np.empty((len(self.columns), len(genre)))
        for start in range(0, len(genre), self.chunk):
            out[:, start : start + self.chunk] = self._sample_chunk(
                rng, genre[start : start + self.chunk]
            )
        for values, column in zip(out, self.columns, strict=True):
            _to_valid(values, self.transforms[column], column)
        return out

    def _sample_chunk(self, rng: np.random.Generator, genre: np.ndarray) -> np.ndarray:
        z0, step, n_knots = self._grid
        n_columns = len(self.columns)
        offset = (np.arange(n_columns) * n_knots)[:, None]
        order = np.argsort(genre, kind="stable")
        ends = np.cumsum(np.bincount(genre, minlength=len(self.genres)))
        out = np.empty((n_columns, len(genre)))
        for g, p in enumerate(self._per_genre):
            rows = order[ends[g - 1] if g else 0 : ends[g]]
            z = p["chol"] @ rng.standard_normal((n_columns, len(rows)))
            special = {}
            for j, (zero_below, knots, q) in p["zero_inflated"].items():
                special[j] = np.interp(z[j], knots, q)
                special[j][z[j] < zero_below] = -np.inf  # expit(-inf) == 0: the point mass
            # Piecewise-linear quantile function on the uniform z grid, flat beyond its ends;
            # z becomes the position on the grid in place.
            z -= z0
            z *= 1.0 / step
            np.clip(z, 0, n_knots - 1, out=z)
            cell = z.astype(np.intp)
            np.minimum(cell, n_knots - 2, out=cell)
            z -= cell
            cell += offset
            block = p["dq"][cell]
            block *= z
            block += p["q"][cell]
            for j, values in special.items():
                block[j] = values
            out[:, rows] = block
        return out


def _to_valid(values: np.ndarray, transform: str, column: str) -> None:
    # Back-transform in place, then clip to the contract's range (integers for the metadata).
    if transform == "logit":
        expit(values, out=values)
    elif transform == "log":
        np.exp(values, out=values)
    if column in VALID_RANGES:
        r = VALID_RANGES[column]
        low = r.low if r.low_inclusive else np.nextafter(r.low, np.inf)
        high = r.high if r.high_inclusive else np.nextafter(r.high, -np.inf)
        np.clip(values, low, high, out=values)
    else:
        np.rint(values, out=values)
        if column == "popularity":
            np.clip(values, 0, 100, out=values)
