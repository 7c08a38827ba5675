"""Realistic synthetic track catalogs, generated partition by partition on Dask workers.

Audio features, popularity and release year come from per-genre Gaussian copulas learned from
real data (see :mod:`sonicatlas.synthetic.params`); artists have long-tailed track counts and a home
genre. Every partition is a pure function of ``(seed, partition)``, so a catalog of any size is
built on the workers without anything passing through the client.

Learn the parameters again with ``python -m sonicatlas.synthetic.tracks learn CSV``.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import dask.dataframe as dd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from sonicatlas import storage
from sonicatlas.contract import FEATURES, TRACK_ID
from sonicatlas.errors import OutputExistsError
from sonicatlas.synthetic.params import (
    PARAMS_FILE,
    CopulaSampler,
    dump_params,
    learn_genre_params,
    load_genre_params,
)

__all__ = ["GeneratedCatalog", "generate_tracks", "generate_tracks_partition"]

#: Artists' expected track counts fall off as (rank + ZIPF_OFFSET) ** -ZIPF_EXPONENT; the offset
#: (Zipf-Mandelbrot) keeps the few top artists from owning whole percents of a catalog.
ZIPF_EXPONENT, ZIPF_OFFSET = 0.9, 10.0
#: Probability that a track is in its artist's home genre rather than a random one.
HOME_GENRE_PROB = 0.9

_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_PAIRS = np.frombuffer("".join(a + b for a in _ALPHABET for b in _ALPHABET).encode(), "<u2")
_MAX_32 = 2**32
_M1, _M2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)
_TRACK, _ARTIST, _SALT_ATTR = (1, 2), (3, 4), 5  # hash salts: (unique part, filler)

_WORDS = """Midnight Echo Golden River Neon Heart Fire Summer Rain Ghost City Lights Dream Wild
Electric Velvet Silver Moon Broken Shadow Ocean Paradise Love Fever Gravity Sunset Thunder Blue
Crystal Signal Orbit Honey Paper Stone Diamond Storm Holy Cold Sweet Dance Highway Rebel Youth
Satellite Desire Lonely Forever Static Sugar Wave Burning Freedom Tonight Memory Island Mirror
Starlight Morning Empire Runaway Northern Wonder Thief Chemical""".split()
_FIRST = """Ava Leo Mia Noah Zoe Luca Ivy Mateo Nina Omar Ruby Kai Lena Jonah Sofia Milo Iris Ezra
Maya Dante Luna Felix Aria Hugo Nora Theo Jade Marco Elsa Rafa Vera Idris Cleo Bruno Tess Yuki
Amara Jonas Lola Nico Frida Sami Olga Pablo Rosa Tariq Alma Diego Greta Ravi Selin Koa Dalia Emil
Inez Malik Hana Otto Paz Quinn Rhea Silas Una Remy""".split()
_LAST = """Rivers Vance Moreno Kim Adeyemi Novak Castillo Reyes Okafor Larsen Haddad Ferreira Ito
Walsh Duarte Banks Cruz Lindqvist Osei Park Romero Kowalski Mensah Silva Nakamura Doyle Dubois
Torres Hale Brooks Santos Mwangi Petrov Lopez Fischer Khan Rossi Sato Byrne Ortega Nunez Varga
Cole Jensen Bianchi Murphy Abara Flores Stone Weber Diaz Ahmed Marsh Kaya Frost Lund Ibarra
Wolfe Nash Price Medina Gray Soto""".split()


@dataclass(frozen=True)
class GeneratedCatalog:
    """What :func:`generate_tracks` wrote."""

    out: str
    rows: int
    npartitions: int
    seed: int


def mix_bits(x: np.ndarray, key: int) -> np.ndarray:
    # splitmix64 finaliser of x + key: a bijection on uint64, so distinct in, distinct out.
    z = x + np.uint64(key)
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


def stream_key(seed: int, salt: int) -> int:
    return int(mix_bits(np.array([seed], dtype=np.uint64), salt * 0x9E3779B97F4A7C15 % 2**64)[0])


def _pairs(word: np.ndarray, n_pairs: int) -> list[np.ndarray]:
    # Two base62 characters per uint32 division (3844 = 62**2): half the divisions of one.
    out = []
    for _ in range(n_pairs):
        word, digit = np.divmod(word, np.uint32(3844))
        out.append(_PAIRS[digit])
    return out


def _base62(unique: np.ndarray, filler: np.ndarray) -> pa.StringArray:
    """22-char ids: 10 from ``filler``, then 12 that encode ``unique`` injectively."""
    n = len(unique)
    columns = [
        *_pairs(filler.astype(np.uint32), 2),
        *_pairs((filler >> np.uint64(32)).astype(np.uint32), 3),
        *_pairs((unique >> np.uint64(32)).astype(np.uint32), 3),  # 3844**3 > 2**32
        *_pairs(unique.astype(np.uint32), 3),
    ]
    chars = np.column_stack(columns) if n else np.empty((0, 11), dtype="<u2")
    offsets = np.arange(0, 22 * (n + 1), 22, dtype=np.int32)
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(chars))


def _ids(index: np.ndarray, seed: int, salt_unique: int, salt_filler: int) -> pa.StringArray:
    unique = mix_bits(index, stream_key(seed, salt_unique))
    return _base62(unique, mix_bits(unique, stream_key(seed, salt_filler)))


@cache
def packaged_sampler() -> CopulaSampler:
    return CopulaSampler(load_genre_params())


@cache
def _artist_names() -> pa.StringArray:
    people = [f"{f} {last}" for f in _FIRST for last in _LAST]
    bands = [f"The {a} {b}s" for a in _WORDS for b in _WORDS if a != b]
    return pa.array(people + bands, type=pa.string())


def _draw_artists(rng, rows: int, n_artists: int, seed: int, cum_shares: np.ndarray):
    """Artist index (power law, 0 most prolific), its hash, and each track's genre."""
    a, low = 1.0 - ZIPF_EXPONENT, (1.0 + ZIPF_OFFSET) ** (1.0 - ZIPF_EXPONENT)
    # Inverse CDF of the continuous power law on [1 + offset, n + 1 + offset), shifted back.
    x = (low + rng.random(rows) * ((n_artists + 1.0 + ZIPF_OFFSET) ** a - low)) ** (1.0 / a)
    x -= ZIPF_OFFSET
    artist = np.minimum(x.astype(np.int64) - 1, n_artists - 1).astype(np.uint64)
    # home genre and name: fixed per (seed, artist)
    attr = mix_bits(artist, stream_key(seed, _SALT_ATTR))
    home = inverse_cdf(cum_shares, (attr >> np.uint64(11)) * 2.0**-53)
    other = inverse_cdf(cum_shares, rng.random(rows))
    return artist, attr, np.where(rng.random(rows) < HOME_GENRE_PROB, home, other)


def inverse_cdf(cum_shares: np.ndarray, u: np.ndarray) -> np.ndarray:
    # A handful of comparisons beats searchsorted on a six-entry table.
    index = np.zeros(len(u), dtype=np.intp)
    for bound in cum_shares[:-1]:
        index += u >= bound
    return index


@cache
def _titles() -> pa.StringArray:
    pairs = [f"{a} {b}" for a in _WORDS for b in _WORDS if a != b]
    return pa.array(_WORDS + pairs + [f"{a} of {b}" for a in _WORDS for b in _WORDS if a != b])


def generate_tracks_partition(
    partition: int, rows: int, seed: int, params: dict | None, n_artists: int
) -> pd.DataFrame:
    """Generate one partition of a synthetic catalog; pure and deterministic in (seed, partition).

    Parameters
    ----------
    partition : int
        Partition number, ``0 <= partition < 2**32``; part of every track_id.
    rows : int
        Number of tracks, ``0 <= rows < 2**32``.
    seed : int
        Catalog seed, ``0 <= seed < 2**64``.
    params : dict or None
        Parameters from :func:`learn_genre_params`; None loads the packaged ones.
    n_artists : int
        Size of the artist pool shared by all partitions.

    Returns
    -------
    pandas.DataFrame
        ``track_id``, ``track_name``, ``artist_id``, ``artist_name``, ``genre`` (str),
        ``popularity``, ``release_year`` (int64) and the FEATURES (float64, inside VALID_RANGES).
        track_ids are unique across all partitions of one seed, by construction.
    """
    if not (0 <= partition < _MAX_32 and 0 <= rows < _MAX_32 and n_artists >= 1):
        raise ValueError("need 0 <= partition, rows < 2**32 and n_artists >= 1")
    sampler = packaged_sampler() if params is None else CopulaSampler(params)
    rng = np.random.default_rng([seed, partition])
    artist, attr, genre = _draw_artists(rng, rows, n_artists, seed, sampler.cum_shares)
    values = sampler.sample(rng, genre)
    titles = _titles()
    title = rng.integers(0, len(titles), size=rows)

    track = (np.uint64(partition) << np.uint64(32)) | np.arange(rows, dtype=np.uint64)
    if n_artists <= rows:  # cheaper to name every artist once and look them up
        artist_ids = pc.take(_ids(np.arange(n_artists, dtype=np.uint64), seed, *_ARTIST), artist)
    else:
        artist_ids = _ids(artist, seed, *_ARTIST)
    names = _artist_names()
    strings = {
        TRACK_ID: _ids(track, seed, *_TRACK),
        "track_name": pc.take(titles, title),
        "artist_id": artist_ids,
        "artist_name": pc.take(names, attr % np.uint64(len(names))),
        "genre": pc.take(pa.array(sampler.genres, type=pa.string()), genre),
    }
    frame = pd.DataFrame({k: v.to_pandas() for k, v in strings.items()})
    columns = sampler.columns
    for column in ("popularity", "release_year"):
        frame[column] = values[columns.index(column)].astype(np.int64)
    rows_of = [columns.index(f) for f in FEATURES]
    features = values[: len(FEATURES)] if rows_of == list(range(len(FEATURES))) else values[rows_of]
    # One float block built from the (features, rows) array: pandas takes it without a copy.
    return pd.concat([frame, pd.DataFrame(features.T, columns=list(FEATURES))], axis=1)


def generate_tracks(
    out: str,
    rows: int,
    seed: int = 0,
    rows_per_partition: int = 1_000_000,
    n_artists: int | None = None,
    storage_options: dict | None = None,
    *,
    overwrite: bool = False,
    params: dict | None = None,
) -> GeneratedCatalog:
    """Generate a synthetic catalog with Dask and write it as a Parquet dataset.

    Each partition is generated on the workers from ``(seed, partition)`` (an active
    ``distributed.Client`` is used when there is one). The dataset is written to a hidden sibling
    directory and renamed into place, so ``out`` never holds a partial catalog.

    Parameters
    ----------
    out : str
        Destination directory, a local path or any fsspec URL.
    rows : int
        Total number of tracks (>= 1).
    seed : int, default 0
        Catalog seed; the same arguments always give the same catalog.
    rows_per_partition : int, default 1_000_000
        Rows per partition; the last one may be shorter.
    n_artists : int, optional
        Size of the artist pool; default ``max(50, rows // 12)``.
    storage_options : dict, optional
        Passed to fsspec and to ``to_parquet``.
    overwrite : bool, default False
        Replace an existing non-empty ``out`` instead of raising ``FileExistsError``.
    params : dict, optional
        Parameters from :func:`learn_genre_params`; default the packaged ones.

    Returns
    -------
    GeneratedCatalog
        Where and what was written.
    """
    if rows < 1 or not 1 <= rows_per_partition < _MAX_32:
        raise ValueError("need rows >= 1 and 1 <= rows_per_partition < 2**32")
    n_artists = max(50, rows // 12) if n_artists is None else n_artists
    fs, path = storage.resolve(out, storage_options)
    if storage.occupied(fs, path) and not overwrite:
        raise OutputExistsError(f"{out} exists and is not empty; pass --overwrite "
                                "(overwrite=True) to replace it")
    npartitions = math.ceil(rows / rows_per_partition)
    sizes = [min(rows_per_partition, rows - i * rows_per_partition) for i in range(npartitions)]
    meta = generate_tracks_partition(0, 0, seed, params, n_artists)
    # params=None travels as None: each worker loads the packaged JSON instead of every task
    # carrying a copy.
    ddf = dd.from_map(
        generate_tracks_partition,
        range(npartitions),
        sizes,
        args=(seed, params, n_artists),
        meta=meta,
        label="generate-tracks",
    )
    with storage.replacing(fs, path) as partial:
        ddf.to_parquet(fs.unstrip_protocol(partial), write_index=False,
                       storage_options=storage_options)
    return GeneratedCatalog(out=out, rows=rows, npartitions=npartitions, seed=seed)


def main(argv: list[str] | None = None) -> None:
    """Command line: ``python -m sonicatlas.synthetic.tracks learn CSV [--out JSON]``."""
    parser = argparse.ArgumentParser(prog="python -m sonicatlas.synthetic.tracks",
                                     description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    learn = sub.add_parser("learn", help="learn genre parameters from the real CSV")
    learn.add_argument("csv")
    learn.add_argument("--out", default=str(Path(__file__).parents[1] / "data" / PARAMS_FILE))
    args = parser.parse_args(argv)
    dump_params(learn_genre_params(args.csv), args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
