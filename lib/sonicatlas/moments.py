"""Count, mean and centred cross-products of rows, from one pass over a chunked array.

Each block returns its count, mean and centred d x d cross-products; the client merges them
in block order with Chan, Golub & LeVeque's pairwise update: exact in float64 (no
``E[x^2] - E[x]^2`` cancellation) and the same on any cluster. A standardiser and a PCA
both come from these numbers, so neither needs a pass of its own.
"""

from __future__ import annotations

from dataclasses import dataclass

import dask
import dask.array as da
import numpy as np


@dataclass(frozen=True)
class Moments:
    """Count, mean and centred cross-products (``sum((x - mean)(x - mean)^T)``) of rows."""

    n: int
    mean: np.ndarray
    cross: np.ndarray

    @classmethod
    def of(cls, block: np.ndarray) -> Moments:
        """The moments of one block of rows, in float64."""
        block = np.asarray(block, dtype=np.float64)
        d = block.shape[1]
        if len(block) == 0:
            return cls(0, np.zeros(d), np.zeros((d, d)))
        mean = block.mean(axis=0)
        centred = block - mean
        return cls(len(block), mean, centred.T @ centred)

    def merge(self, other: Moments) -> Moments:
        """The moments of both sets of rows (Chan, Golub & LeVeque's pairwise update)."""
        if other.n == 0:
            return self
        if self.n == 0:
            return other
        n = self.n + other.n
        delta = other.mean - self.mean
        mean = self.mean + delta * (other.n / n)
        cross = self.cross + other.cross + np.outer(delta, delta) * (self.n * other.n / n)
        return Moments(n, mean, cross)


def moments(X) -> Moments:
    """The moments of every row of a numpy or dask array, in one pass over its blocks."""
    if not isinstance(X, da.Array):
        return Moments.of(X)
    blocks = [dask.delayed(Moments.of)(block) for block in X.to_delayed().ravel()]
    total = Moments(0, np.zeros(X.shape[1]), np.zeros((X.shape[1],) * 2))
    for part in dask.compute(*blocks):  # in block order: the same sums on any cluster
        total = total.merge(part)
    return total


def standardized(block: np.ndarray, mean: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """``(block - mean) / scale`` computed in float64, as float32."""
    return ((block.astype(np.float64) - mean) / scale).astype(np.float32)
