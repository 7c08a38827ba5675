"""The listeners of a synthetic listening log: planted taste groups, and the users in them.

Every user belongs to one of ``tastes`` taste groups (the ground truth written to ``users/``);
a group has a preferred mix of genres and a daily rhythm. Each user is a pure function of
``(seed, tastes, user number)``, so users do not depend on how the log is partitioned.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from sonicatlas.synthetic.tracks import inverse_cdf, mix_bits, stream_key
from sonicatlas.synthetic.tracks import packaged_sampler as genre_sampler

__all__ = ["COUNTRIES", "RHYTHMS", "TastePreferences", "generate_users", "taste_parameters"]

#: (name, weekday peak hour, weekend peak hour, weekend-day rate relative to a weekday), UTC.
RHYTHMS = (("morning commute", 8.0, 11.0, 0.5), ("evening", 20.0, 21.0, 1.0),
           ("late night", 23.5, 1.5, 1.4), ("work hours", 14.0, 16.0, 0.4),
           ("weekend nights", 21.0, 23.5, 2.5), ("early bird", 6.5, 8.5, 0.9))
COUNTRIES = ("US", "BR", "MX", "GB", "DE", "FR", "ES", "SE", "JP", "IN")
COUNTRY_SHARES = (0.30, 0.12, 0.09, 0.09, 0.08, 0.07, 0.06, 0.04, 0.08, 0.07)
_STRINGS = {pa.string(): pd.StringDtype("pyarrow")}  # what dask gives the catalog's strings
# hash salts; 15 and 17 are those of sonicatlas.synthetic.listens: keep each distinct
_GROUP, _COUNTRY, _PREMIUM, _ACTIVITY = range(11, 15)
_TASTE = 16


@dataclass(frozen=True, eq=False)
class TastePreferences:
    """The planted taste groups (row ``g`` of each array describes group ``g``)."""

    genres: tuple[str, ...]
    preference: np.ndarray  # (tastes, genres): probability of each genre per listen
    share: np.ndarray  # share of users in each group
    rhythm: tuple[str, ...]  # name of each group's daily rhythm (see RHYTHMS)
    peak_hour: np.ndarray  # weekday peak hour, UTC
    weekend_peak_hour: np.ndarray
    weekend_rate: np.ndarray  # sessions per weekend day / sessions per weekday
    premium_share: np.ndarray

    def __post_init__(self):
        for value in vars(self).values():  # shared through a cache: make it read-only
            if isinstance(value, np.ndarray):
                value.flags.writeable = False


@cache
def taste_parameters(seed: int, tastes: int) -> TastePreferences:
    """The taste groups of a seed: what :func:`generate_listens` plants (the ground truth).

    Each group's preference is Dirichlet-drawn with most of its mass on a primary and a
    secondary genre (primaries cycle through all genres first), so groups differ clearly.

    Parameters
    ----------
    seed, tastes : int
        Seed of the listens and number of groups (>= 1).

    Returns
    -------
    TastePreferences
        Genre preference, rhythm, user share and premium share of each group.
    """
    if tastes < 1:
        raise ValueError("need tastes >= 1")
    genres = tuple(genre_sampler().genres)
    rng = np.random.default_rng([seed, _TASTE])
    g = len(genres)
    primary = np.resize(rng.permutation(g), tastes)
    secondary = (primary + 1 + rng.integers(0, g - 1, tastes)) % g
    alpha = np.full((tastes, g), 0.4)
    alpha[np.arange(tastes), primary] += 8.0
    alpha[np.arange(tastes), secondary] += 3.0
    rhythm = np.resize(rng.permutation(len(RHYTHMS)), tastes)
    table = np.array([r[1:] for r in RHYTHMS])[rhythm]
    return TastePreferences(
        genres=genres,
        preference=np.array([rng.dirichlet(a) for a in alpha]),
        share=rng.dirichlet(np.full(tastes, 8.0)),
        rhythm=tuple(RHYTHMS[r][0] for r in rhythm),
        peak_hour=table[:, 0], weekend_peak_hour=table[:, 1], weekend_rate=table[:, 2],
        premium_share=rng.uniform(0.15, 0.65, tastes),
    )


def _unit(index: np.ndarray, seed: int, salt: int) -> np.ndarray:
    # A uniform in (0, 1) per user index: users do not depend on the partitioning.
    return ((mix_bits(index, stream_key(seed, salt)) >> np.uint64(11)) + 0.5) * 2.0**-53


def _user_ids(index: np.ndarray) -> pa.StringArray:
    digits = (index[:, None] // 10 ** np.arange(8, -1, -1, dtype=np.uint64)) % np.uint64(10)
    chars = np.hstack([np.tile(np.frombuffer(b"user_", np.uint8), (len(index), 1)),
                       (digits + np.uint64(48)).astype(np.uint8)])
    offsets = np.arange(0, 14 * (len(index) + 1), 14, dtype=np.int32)
    return pa.StringArray.from_buffers(len(index), pa.py_buffer(offsets), pa.py_buffer(chars))


def generate_users(start: int, stop: int, seed: int, tastes: int) -> pd.DataFrame:
    """Users number ``start`` to ``stop - 1``; each a pure function of ``(seed, tastes, i)``.

    Parameters
    ----------
    start, stop, seed, tastes : int
        User numbers ``start <= i < stop <= 10**9``; seed and groups as in generate_listens.

    Returns
    -------
    pandas.DataFrame
        user_id, country, subscription, taste_group (int64) and activity (float64, lognormal
        relative listening volume; not written to ``users/``).
    """
    params = taste_parameters(seed, tastes)
    index = np.arange(start, stop, dtype=np.uint64)
    group = inverse_cdf(np.cumsum(params.share), _unit(index, seed, _GROUP))
    country = inverse_cdf(np.cumsum(COUNTRY_SHARES), _unit(index, seed, _COUNTRY))
    premium = _unit(index, seed, _PREMIUM) < params.premium_share[group]
    # Box-Muller normal from two hashed uniforms; sigma 1.1 gives a heavy-listener tail.
    u1, u2 = _unit(index, seed, _ACTIVITY), _unit(index, seed, _ACTIVITY + 100)
    normal = np.sqrt(-2 * np.log(u1)) * np.cos(2 * np.pi * u2)
    return pa.table({
        "user_id": _user_ids(index),
        "country": pc.take(pa.array(COUNTRIES), country),
        "subscription": pc.take(pa.array(["free", "premium"]), premium.astype(np.int64)),
        "taste_group": group.astype(np.int64),
        "activity": np.exp(1.1 * normal),
    }).to_pandas(types_mapper=_STRINGS.get)
