"""Density-based methods fitted on a sample, labelling every row: DBSCAN, HDBSCAN, mean shift.

Neither scikit-learn's DBSCAN nor its HDBSCAN can label unseen rows, so each keeps a
neighbour index of the sample points that define its clusters, ships it to the workers
once, and gives a row the label of its nearest such point when that point is close enough,
else ``-1`` (noise). Mean shift climbs to the modes of the sample's kernel density, and a
row takes the nearest mode. See :mod:`sonicatlas.estimators.sampled` for the conventions shared by
every method.

The fits see only the sample, whose density is ``sample_size / n`` times the data's:
distances such as DBSCAN's ``eps`` refer to the sample, and a row is judged against the
sample points exactly as a sample point would be.
"""

from __future__ import annotations

from functools import partial

import numpy as np
from sklearn.cluster import DBSCAN as SklearnDBSCAN
from sklearn.cluster import HDBSCAN as SklearnHDBSCAN
from sklearn.cluster import MeanShift as SklearnMeanShift
from sklearn.cluster import estimate_bandwidth
from sklearn.neighbors import NearestNeighbors

from sonicatlas.estimators.knee import knee
from sonicatlas.estimators.lloyd import nearest_center_labels
from sonicatlas.estimators.sampled import SampledClusterer


def k_distance(points: np.ndarray, min_samples: int) -> np.ndarray:
    """Sorted distance of each point to its ``min_samples``-th nearest neighbour.

    The point itself counts as the first neighbour, as in DBSCAN's ``min_samples``: a point
    is a core point exactly when this distance is at most ``eps``.
    """
    n_neighbors = min(min_samples, len(points))
    distances, _ = NearestNeighbors(n_neighbors=n_neighbors).fit(points).kneighbors(points)
    return np.sort(distances[:, -1])


def _within_radius_labels(block: np.ndarray, index: NearestNeighbors | None,
                          labels: np.ndarray, radius: float) -> np.ndarray:
    """Label of the nearest indexed point when within ``radius`` (inclusive), else -1."""
    if index is None:  # no point to join: everything is noise
        return np.full(len(block), -1, dtype=np.int64)
    distances, nearest = index.kneighbors(block, n_neighbors=1)
    out = labels[nearest[:, 0]].astype(np.int64)
    out[distances[:, 0] > radius] = -1
    return out


def _index(points: np.ndarray) -> NearestNeighbors | None:
    return NearestNeighbors(n_neighbors=1).fit(points) if len(points) else None


class DBSCAN(SampledClusterer):
    """DBSCAN on a sample; a row joins the cluster of its nearest core point within ``eps_``.

    That is how DBSCAN itself places a border point (one within ``eps`` of a core point),
    so sample rows keep the labels scikit-learn gave them, up to border points within reach
    of two clusters; a row within ``eps_`` of no core point is noise (``-1``).

    ``eps=None`` picks ``eps_`` on the sample's k-distance curve (:func:`k_distance` with
    ``min_samples``, sorted, stored as ``k_distance_``) at its knee
    (:mod:`~sonicatlas.estimators.knee`): there the distance needed to become core starts to
    climb steeply, separating points inside clusters from sparse ones. It is the sample's
    scale: a smaller sample gives a larger ``eps_``.

    Parameters
    ----------
    eps : float or None
        Neighbourhood radius in the sample; None picks it at the k-distance knee.
    min_samples : int
        Points (itself included) within ``eps`` that make a point core.
    sample_size : int
        Rows in the sample; neighbourhood queries make DBSCAN up to O(n^2).
    random_state : int, numpy.random.RandomState or None, default=0
        Seed of the sample; a ``RandomState`` gives one seed drawn from it, None a
        fresh one.

    Attributes
    ----------
    eps_ : float
    k_distance_ : ndarray or None
        The sorted k-distance curve of the sample (None when ``eps`` was given).
    sample_labels_ : ndarray
        scikit-learn's labels of the sample.
    n_core_ : int
        Core points in the sample.
    model_ : sklearn.cluster.DBSCAN
    labels_ : ndarray or dask.array.Array of int64, shape (n_samples,)
        Label of every fitted row, as ``predict`` gives it: lazy for dask input.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Column names, when fitted on a pandas DataFrame.
    n_clusters_, fitted_on_sample_, sample_size_, fit_seconds_

    Notes
    -----
    numpy and dask input: see :class:`sonicatlas.estimators.sampled.SampledClusterer`.
    """

    def __init__(self, *, eps=None, min_samples=5, sample_size=20_000, random_state=0):
        self.eps = eps
        self.min_samples = min_samples
        self.sample_size = sample_size
        self.random_state = random_state

    def _fit_sample(self, sample, seed):
        if self.eps is None:
            self.k_distance_ = k_distance(sample, self.min_samples)
            self.eps_ = float(self.k_distance_[knee(self.k_distance_)])
            if self.eps_ <= 0.0:
                raise ValueError("the k-distance knee is at distance 0 (duplicate rows?); "
                                 "give eps or a larger min_samples")
        else:
            self.k_distance_ = None
            self.eps_ = float(self.eps)
        self.model_ = SklearnDBSCAN(eps=self.eps_, min_samples=self.min_samples).fit(sample)
        core = self.model_.core_sample_indices_
        self.sample_labels_ = self.model_.labels_
        self.n_core_ = len(core)
        self.n_clusters_ = int(self.sample_labels_.max()) + 1
        self._core_index = _index(sample[core])
        self._core_labels = self.sample_labels_[core]

    def _labeler(self):
        return partial(_within_radius_labels, index=self._core_index,
                       labels=self._core_labels, radius=self.eps_)


class HDBSCAN(SampledClusterer):
    """HDBSCAN on a sample; a row joins its nearest clustered sample point if close enough.

    scikit-learn's HDBSCAN cannot label new points. Here a row takes the label of its
    nearest sample point that HDBSCAN did not call noise, provided it is within ``radius_``,
    else it is noise (``-1``). ``radius_`` is the ``radius_quantile`` quantile, over the
    clustered sample points, of each point's distance to its nearest other point of the
    same cluster: a row is accepted when it is as close to a cluster as most of that
    cluster's own points are to each other. Clustered sample points keep their labels
    (distance 0); sample points HDBSCAN called noise may be labelled when within
    ``radius_`` of a cluster, so compare the fit itself with ``sample_labels_``.

    Parameters
    ----------
    min_cluster_size : int
    min_samples : int or None
        As for scikit-learn.
    radius_quantile : float
    sample_size : int
    random_state : int, numpy.random.RandomState or None, default=0
        Seed of the sample; a ``RandomState`` gives one seed drawn from it, None a
        fresh one.

    Attributes
    ----------
    radius_ : float
    sample_labels_ : ndarray
        scikit-learn's labels of the sample.
    model_ : sklearn.cluster.HDBSCAN
    labels_ : ndarray or dask.array.Array of int64, shape (n_samples,)
        Label of every fitted row, as ``predict`` gives it: lazy for dask input.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Column names, when fitted on a pandas DataFrame.
    n_clusters_, fitted_on_sample_, sample_size_, fit_seconds_

    Notes
    -----
    numpy and dask input: see :class:`sonicatlas.estimators.sampled.SampledClusterer`.
    """

    def __init__(self, *, min_cluster_size=5, min_samples=None, radius_quantile=0.95,
                 sample_size=20_000, random_state=0):
        self.min_cluster_size = min_cluster_size
        self.min_samples = min_samples
        self.radius_quantile = radius_quantile
        self.sample_size = sample_size
        self.random_state = random_state

    def _fit_sample(self, sample, seed):
        self.model_ = SklearnHDBSCAN(min_cluster_size=self.min_cluster_size,
                                     min_samples=self.min_samples, copy=True).fit(sample)
        labels = self.model_.labels_
        self.sample_labels_ = labels
        self.n_clusters_ = int(labels.max()) + 1
        gaps = []
        for cluster in range(self.n_clusters_):
            points = sample[labels == cluster]  # at least min_cluster_size >= 2 points
            distances, _ = NearestNeighbors(n_neighbors=2).fit(points).kneighbors(points)
            gaps.append(distances[:, 1])
        self.radius_ = (float(np.quantile(np.concatenate(gaps), self.radius_quantile))
                        if gaps else 0.0)
        clustered = labels >= 0
        self._index = _index(sample[clustered])
        self._labels = labels[clustered]

    def _labeler(self):
        return partial(_within_radius_labels, index=self._index, labels=self._labels,
                       radius=self.radius_)


class MeanShift(SampledClusterer):
    """Mean shift on a sample; every row takes its nearest cluster center.

    The bandwidth, unless given, is scikit-learn's ``estimate_bandwidth(sample,
    quantile=quantile)``: the mean distance of the sample points to their
    ``quantile * len(sample)``-th nearest neighbour. Each sample point seeds a climb unless
    ``bin_seeding``, so the cost grows quadratically with the sample; ``bin_seeding=True``
    seeds from a grid instead.

    Parameters
    ----------
    bandwidth : float or None
    quantile : float
    bin_seeding : bool
    sample_size : int
    random_state : int, numpy.random.RandomState or None, default=0
        Seed of the sample and of the bandwidth estimate; a ``RandomState`` gives one seed
        drawn from it, None a fresh one.

    Attributes
    ----------
    bandwidth_ : float
    cluster_centers_ : ndarray of shape (n_clusters_, n_features)
    sample_labels_ : ndarray
        scikit-learn's labels of the sample.
    model_ : sklearn.cluster.MeanShift
    labels_ : ndarray or dask.array.Array of int64, shape (n_samples,)
        Label of every fitted row, as ``predict`` gives it: lazy for dask input.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Column names, when fitted on a pandas DataFrame.
    n_clusters_, fitted_on_sample_, sample_size_, fit_seconds_

    Notes
    -----
    numpy and dask input: see :class:`sonicatlas.estimators.sampled.SampledClusterer`.
    """

    def __init__(self, *, bandwidth=None, quantile=0.2, bin_seeding=False, sample_size=5_000,
                 random_state=0):
        self.bandwidth = bandwidth
        self.quantile = quantile
        self.bin_seeding = bin_seeding
        self.sample_size = sample_size
        self.random_state = random_state

    def _fit_sample(self, sample, seed):
        bandwidth = self.bandwidth
        if bandwidth is None:
            bandwidth = estimate_bandwidth(sample, quantile=self.quantile, random_state=seed)
        self.bandwidth_ = float(bandwidth)
        self.model_ = SklearnMeanShift(bandwidth=self.bandwidth_,
                                       bin_seeding=self.bin_seeding).fit(sample)
        self.cluster_centers_ = self.model_.cluster_centers_.astype(np.float64)
        self.sample_labels_ = self.model_.labels_
        self.n_clusters_ = len(self.cluster_centers_)

    def _labeler(self):
        return partial(nearest_center_labels, centers=self.cluster_centers_)
