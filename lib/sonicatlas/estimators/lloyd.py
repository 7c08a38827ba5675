"""The compiled passes of KMeans, and its k-means++ restarts: what the workers run.

Nothing here imports scikit-learn: a worker that unpickles these tasks loads numpy and numba
only, and no run pays for importing scikit-learn in every new worker process
(docs/benchmarks.md).
"""

from __future__ import annotations

import numba
import numpy as np


def nearest_centers(block: np.ndarray, centers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Label and squared distance to the nearest center, in float64 for an exact cost.

    The distances are those of the Lloyd passes (:func:`score_rows`), so a row's label here
    is the label it had when the final centers were costed.
    """
    labels, squared, _ = score_rows(block, centers)
    return labels, squared


def nearest_center_labels(block: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """Index of each row's nearest center (int64): what ``predict`` gives on every chunk."""
    return nearest_centers(block, centers)[0]


def center_distances(block: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """Euclidean distance (float64) of each row to every center: ``KMeans.transform``."""
    x = np.asarray(block, dtype=np.float64)
    return np.sqrt(np.maximum(((x[:, None, :] - centers[None]) ** 2).sum(-1), 0.0))


def score_rows(block: np.ndarray, centers: np.ndarray, *, mean=None, scale=None,
               project_mean=None, project=None
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Nearest center of each row, its squared distance and a projection, in one pass.

    Parameters
    ----------
    block : numpy.ndarray of shape (n, d)
        Rows, any float dtype and memory layout.
    centers : numpy.ndarray of shape (k, d)
    mean, scale : numpy.ndarray of shape (d,), optional
        Standardise the rows first, ``(x - mean) / scale`` in float64, as a
        ``StandardScaler`` does; the centers are in the standardised space.
    project_mean, project : numpy.ndarray, optional
        ``(z - project_mean) @ project.T`` of the (standardised) rows, ``project`` of shape
        (p, d): a PCA's first ``p`` components.

    Returns
    -------
    labels : numpy.ndarray of int64
        First nearest center on ties, as ``argmin``.
    squared : numpy.ndarray of float64
        ``sum((z - c)^2)`` over the features in order.
    projected : numpy.ndarray of shape (n, p), or None without ``project``
    """
    n, d = block.shape
    labels = np.empty(n, dtype=np.int64)
    squared = np.empty(n)
    projected = None if project is None else np.empty((n, len(project)))
    _score(block, np.ascontiguousarray(centers, dtype=np.float64),
           *(None if a is None else np.ascontiguousarray(a, dtype=np.float64)
             for a in (mean, scale, project_mean, project)),
           labels, squared, projected)
    return labels, squared, projected


_TILE = 128  # rows per tile: a tile's float64 transpose (d x 128) stays in L1


@numba.njit(cache=True, nogil=True)
def _tile_buffers(d):  # pragma: no cover - numba
    """A tile (d x rows, float64) and its rows' distance, best distance and best center."""
    return (np.empty((d, _TILE)), np.empty(_TILE), np.empty(_TILE),
            np.empty(_TILE, dtype=np.int64))


@numba.njit(cache=True, nogil=True)
def _load_tile(block, start, m, mean, scale, tile):  # pragma: no cover - numba
    """Rows ``start:start + m`` into ``tile``, transposed to float64 (standardised if given).

    ``mean is None`` is known when compiling, so the Lloyd passes pay nothing for it.
    """
    d = block.shape[1]
    for r in range(m):
        for j in range(d):
            if mean is None:
                tile[j, r] = block[start + r, j]
            else:
                tile[j, r] = (block[start + r, j] - mean[j]) / scale[j]


@numba.njit(cache=True, nogil=True)
def _label_tile(tile, m, centers, value, best_value, best):  # pragma: no cover - numba
    """Nearest center (``best``) and squared distance (``best_value``) of a tile's rows.

    Distances in float64, ``sum((x - c)^2)`` over the features in order, first center on
    ties (as numpy's argmin). The innermost loop runs over the tile's rows, so the compiler
    vectorises it without reordering any row's sum: the results are those of a row-by-row
    loop, bit for bit.
    """
    d = tile.shape[0]
    for c in range(centers.shape[0]):
        value[:m] = 0.0
        for j in range(d):
            center = centers[c, j]
            for r in range(m):
                diff = tile[j, r] - center
                value[r] += diff * diff
        for r in range(m):
            if c == 0 or value[r] < best_value[r]:
                best_value[r] = value[r]
                best[r] = c


@numba.njit(cache=True, nogil=True)
def _assign_and_sum(block, centers, out):  # pragma: no cover - numba
    """Label each row by its nearest center; add it to that center's sums, count and cost.

    One pass over the rows in tiles, where numpy's version (a product, argmin, one bincount
    per feature) reads the block d + 2 times. Compiled once and cached on disk
    (``cache=True``), not in every run.
    """
    n, d = block.shape
    tile, value, best_value, best = _tile_buffers(d)
    for start in range(0, n, _TILE):
        m = min(_TILE, n - start)
        _load_tile(block, start, m, None, None, tile)
        _label_tile(tile, m, centers, value, best_value, best)
        for r in range(m):
            b = best[r]
            for j in range(d):
                out[b, j] += tile[j, r]
            out[b, d] += 1.0
            out[b, d + 1] += best_value[r]


@numba.njit(cache=True, nogil=True)
def _score(block, centers, mean, scale, project_mean, project, labels, squared,
           projected):  # pragma: no cover - numba
    """:func:`score_rows`: the tiles of :func:`_assign_and_sum`, written out per row."""
    n, d = block.shape
    tile, value, best_value, best = _tile_buffers(d)
    for start in range(0, n, _TILE):
        m = min(_TILE, n - start)
        _load_tile(block, start, m, mean, scale, tile)
        _label_tile(tile, m, centers, value, best_value, best)
        for r in range(m):
            labels[start + r] = best[r]
            squared[start + r] = best_value[r]
        if project is not None:
            for p in range(project.shape[0]):
                value[:m] = 0.0  # each row's sum still runs over the features in order
                for j in range(d):
                    for r in range(m):
                        value[r] += (tile[j, r] - project_mean[j]) * project[p, j]
                for r in range(m):
                    projected[start + r, p] = value[r]


def lloyd_partial(block: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """k x (d + 2) array: per-cluster feature sums, count and squared distance (float64)."""
    out = np.zeros((centers.shape[0], centers.shape[1] + 2))
    # Any memory layout: the scaled blocks are Fortran-ordered, and a C copy of a block
    # would cost as much as the kernel itself.
    _assign_and_sum(block, np.ascontiguousarray(centers, dtype=np.float64), out)
    return out


def candidate_costs(block: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """Exact cost of ``block`` under each of several center sets (one per restart).

    The compiled pass of the Lloyd iterations, once per set: one read of the block per set
    instead of a product with every set's centers, and exact rather than expanded.
    """
    return np.array([score_rows(block, centers)[1].sum() for centers in candidates])


def refine(candidates: np.ndarray, costs: list[np.ndarray], pieces: list[np.ndarray],
           tol: float, max_iter: int = 300) -> np.ndarray:
    """The cheapest candidate, brought to a Lloyd fixed point on a larger sample.

    Parameters
    ----------
    candidates : numpy.ndarray of shape (n_init, k, d)
        The restarts' centers.
    costs : list of numpy.ndarray of shape (n_init,)
        Each piece's cost under every candidate (:func:`candidate_costs`), summed in order.
    pieces : list of numpy.ndarray
        The larger sample, in pieces (drawn where the chunks are).
    tol : float
        Absolute tolerance on the squared center shift, as for the full fit.

    Returns
    -------
    numpy.ndarray of shape (k, d)
        Centers from which the full fit needs fewer passes over all rows: a restart's optimum
        on ~100k rows is not the optimum of the whole data, and converging it on the larger
        sample first moves it most of the way there, at the same or a lower final cost.
    """
    best = candidates[int(np.argmin(np.sum(costs, axis=0)))]
    return _converge(np.concatenate(pieces), best, tol, max_iter)


def sample_block(block: np.ndarray, seed: int, index: int, fraction: float) -> np.ndarray:
    rng = np.random.default_rng([seed, index])
    return block[rng.random(len(block)) < fraction]


def concatenate_samples(parts: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(parts).astype(np.float64)


def mean_variance(sample: np.ndarray) -> float:
    return float(np.mean(np.var(sample, axis=0)))


def restart(sample: np.ndarray, k: int, seed: int, tol: float, max_iter: int = 300
            ) -> np.ndarray:
    """Centers of one restart on ``sample``: k-means++ seeding, then Lloyd iterations.

    What scikit-learn's ``KMeans(n_init=1, random_state=seed)`` does (the same k-means++
    draws from the same seed, then Lloyd until the squared center shift is at most ``tol``),
    with the compiled pass of the full fit. One thread, so the centers depend only on the
    sample and the seed, never on a machine's cores.

    Parameters
    ----------
    sample : numpy.ndarray of shape (n, d)
    k : int
    seed : int
    tol : float
        Absolute tolerance on the squared center shift.
    max_iter : int
    """
    rows = exact_float32(sample)
    centers, _ = kmeans_plusplus(rows, k, np.random.RandomState(seed))
    return _converge(rows, centers, tol, max_iter)


def exact_float32(rows: np.ndarray) -> np.ndarray:
    """``rows`` as float32 where that loses nothing, else as they are.

    The job's samples are float64 copies of float32 rows: given back as float32, the kernels
    read the same float64 numbers (bit for bit) and need no float64 compile (~1 s a kernel on
    a cold cache, in every worker). One pass over a ~100k-row sample, ~1 ms.
    """
    if rows.dtype == np.float64:
        narrow = rows.astype(np.float32)
        if np.array_equal(narrow, rows):
            return narrow
    return rows


def lloyd_step(stats: np.ndarray, centers: np.ndarray) -> tuple[np.ndarray, float]:
    """New centers from a pass's :func:`lloyd_partial` sums, and their squared shift.

    An empty cluster keeps its center.
    """
    counts = stats[:, -2]
    moved = np.where(counts[:, None] > 0, stats[:, :-2] / np.maximum(counts, 1)[:, None],
                     centers)
    return moved, float(((moved - centers) ** 2).sum())


def _converge(sample: np.ndarray, centers: np.ndarray, tol: float, max_iter: int
              ) -> np.ndarray:
    """Lloyd iterations on ``sample`` until the squared center shift is at most ``tol``."""
    for _ in range(max_iter):
        centers, shift = lloyd_step(lloyd_partial(sample, centers), centers)
        if shift <= tol:
            break
    return centers


def kmeans_plusplus(X: np.ndarray, k: int, random_state: np.random.RandomState
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Greedy k-means++ seeding: the rows ``sklearn.cluster.kmeans_plusplus`` picks.

    The first center is a uniform draw; each next one is the best of ``2 + log k`` rows drawn
    with probability proportional to their squared distance to the nearest center so far:
    the one that leaves the smallest total. The draws from ``random_state`` are scikit-learn's,
    one for one, so a seed gives the same centers as there (test_kmeans checks).

    Returns
    -------
    centers : numpy.ndarray of shape (k, d)
    indices : numpy.ndarray of int
        Their rows in ``X``.
    """
    n = len(X)
    trials = 2 + int(np.log(k))
    indices = np.empty(k, dtype=np.int64)
    indices[0] = random_state.choice(n, p=np.ones(n) / n)
    closest = _squared_distances(X, X[indices[0]])
    potential = closest.sum()
    for c in range(1, k):
        picks = np.minimum(np.searchsorted(np.cumsum(closest),
                                           random_state.uniform(size=trials) * potential),
                           n - 1)
        options = np.minimum(closest, [_squared_distances(X, X[i]) for i in picks])
        totals = options.sum(axis=1)
        best = int(np.argmin(totals))
        potential, closest, indices[c] = totals[best], options[best], picks[best]
    return X[indices].astype(np.float64), indices


def _squared_distances(X: np.ndarray, point: np.ndarray) -> np.ndarray:
    return score_rows(X, point[None, :])[1]
