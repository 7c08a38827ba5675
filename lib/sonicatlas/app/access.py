"""How the explorer's views reach the tracks: in this process, or on a Dask cluster.

A view is written once, as a function of one table of tracks and the filters' mask over it
(a *partial*: counts, sums, a few rows), and a *combine* that merges partials (and its own
answers; a combine of one answer is that answer). ``LocalTracks`` runs the partial once over
the whole pandas table, with the numpy mask: the answer, no combine. ``ClusterTracks`` runs it
on every partition of a dask DataFrame persisted on the cluster, next to the mask's partition,
and combines the partials on the workers, a few at a time, so one answer comes back: only what
a view draws crosses the network.
"""

from __future__ import annotations

from collections.abc import Callable

import dask
import dask.dataframe as dd
import numpy as np
import pandas as pd

from sonicatlas.app.downloads import write_frames, write_rows


class LocalTracks:
    """A run's tracks held in this process as one pandas DataFrame; masks are numpy arrays."""

    def __init__(self, frame: pd.DataFrame):
        self.frame = frame

    @property
    def size(self) -> int:
        return len(self.frame)

    def select(self, rows: Callable[[pd.DataFrame], np.ndarray]) -> np.ndarray:
        """The mask of the rows ``rows(table)`` keeps."""
        return rows(self.frame)

    def count(self, mask: np.ndarray) -> int:
        return int(mask.sum())

    def reduce(self, mask, partial: Callable, combine: Callable):
        """``partial(table, mask)``: one partial over the whole table is the answer (a
        ``combine`` of one answer is that answer)."""
        return partial(self.frame, mask)

    def chosen(self, mask: np.ndarray, columns: list[str]) -> pd.DataFrame:
        """The selected rows' ``columns`` (what Datashader aggregates)."""
        return self.frame.loc[mask, columns]

    def distinct(self, column: str, mask: np.ndarray) -> int:
        """How many distinct values of a categorical ``column`` the selection holds."""
        values = self.frame[column]
        codes = values.cat.codes.to_numpy()[mask]
        return int(np.count_nonzero(np.bincount(codes[codes >= 0],
                                                minlength=len(values.cat.categories))))

    def quantiles(self, column: str, q: tuple[float, ...]) -> np.ndarray:
        return np.nanquantile(self.frame[column].to_numpy(), q)

    def moments(self, features: list[str]) -> dict[str, tuple[float, float]]:
        """Each feature's mean and standard deviation over every track (NaN skipped)."""
        out = {}
        for feature in features:
            column = self.frame[feature].to_numpy(np.float64)
            out[feature] = (float(np.nanmean(column)), float(np.nanstd(column)))
        return out

    def sample(self, mask: np.ndarray, label: str, n: int, seed: int,
               columns: list[str]) -> pd.DataFrame:
        """At most ``n`` selected rows whose ``label`` is a cluster (not noise), in order."""
        rows = np.flatnonzero(mask & (self.frame[label].to_numpy() >= 0))
        if len(rows) > n:
            rows = np.sort(np.random.default_rng(seed).choice(rows, n, replace=False))
        return self.frame.iloc[rows][columns]

    def write(self, mask: np.ndarray, columns: list[str], fmt: str) -> str:
        """The selection's ``columns`` written to a temporary file (see
        :func:`sonicatlas.app.downloads.write_frames`)."""
        return write_rows(self.frame, np.flatnonzero(mask), columns, fmt)


#: Partials combined per task on the workers.
SPLIT_EVERY = 8


def _merged(combine: Callable, answers: list):
    return combine(list(answers))


def _on_part(partial: Callable, part: pd.DataFrame, mask):
    return partial(part, None if mask is None else np.asarray(mask, dtype=bool))


def _rows_of(part: pd.DataFrame, mask: pd.Series, columns: list[str]) -> pd.DataFrame:
    return part.loc[np.asarray(mask, dtype=bool), columns]


def _keep(part: pd.DataFrame, rows: Callable) -> pd.Series:
    return pd.Series(rows(part), index=part.index, dtype=bool)


class ClusterTracks:
    """A run's tracks as a dask DataFrame persisted on a cluster; masks are dask Series
    (computed once per filter change and persisted beside the partitions they index).

    Parameters
    ----------
    frame : dask.dataframe.DataFrame
        Persisted; one partition per part of the run.
    size : int
        Its row count.
    """

    def __init__(self, frame: dd.DataFrame, size: int):
        self.frame = frame
        self._size = size

    @property
    def size(self) -> int:
        return self._size

    def select(self, rows: Callable[[pd.DataFrame], np.ndarray]) -> dd.Series:
        return self.frame.map_partitions(_keep, rows, meta=(None, bool)).persist()

    def count(self, mask: dd.Series) -> int:
        return int(mask.sum().compute())

    def reduce(self, mask, partial: Callable, combine: Callable):
        """``combine`` of ``partial`` over each partition and its part of ``mask``.

        The partials are combined on the workers, ``SPLIT_EVERY`` at a time, so only one
        combined answer comes back, whatever the number of partitions (``combine`` must take
        a list of its own answers as it takes a list of partials).
        """
        parts = self.frame.to_delayed()
        masks = [None] * len(parts) if mask is None else mask.to_delayed()
        run, merge = dask.delayed(_on_part, pure=True), dask.delayed(_merged, pure=True)
        level = [run(partial, part, m) for part, m in zip(parts, masks, strict=True)]
        while True:
            level = [merge(combine, level[i:i + SPLIT_EVERY])
                     for i in range(0, len(level), SPLIT_EVERY)]
            if len(level) == 1:
                return level[0].compute()

    def chosen(self, mask: dd.Series, columns: list[str]) -> dd.DataFrame:
        return dd.map_partitions(_rows_of, self.frame, mask, columns,
                                 meta=self.frame._meta[columns], align_dataframes=False)

    def distinct(self, column: str, mask: dd.Series) -> int:
        values = self.chosen(mask, [column])[column].astype("string")
        # a tree of per-partition distinct values into one partition: no shuffle
        return int(len(values.drop_duplicates(split_out=1)))

    def quantiles(self, column: str, q: tuple[float, ...]) -> np.ndarray:
        return self.frame[column].quantile(list(q)).compute().to_numpy()

    def moments(self, features: list[str]) -> dict[str, tuple[float, float]]:
        # two passes, as numpy's nanstd: the mean, then the squared deviations from it
        sums = self.reduce(None, lambda part, _: _sums(part, features, None), sum)
        means = sums[0] / np.maximum(sums[1], 1)
        spread = self.reduce(None, lambda part, _: _sums(part, features, means), sum)[0]
        spread = np.sqrt(spread / np.maximum(sums[1], 1))
        return {f: (float(means[j]), float(spread[j])) for j, f in enumerate(features)}

    def sample(self, mask: dd.Series, label: str, n: int, seed: int,
               columns: list[str]) -> pd.DataFrame:
        """About ``n`` selected rows whose ``label`` is a cluster: each partition keeps each
        of its rows with the same chance, so every partition is represented by its size."""
        total = self.reduce(mask, lambda part, m: int((m & (part[label].to_numpy() >= 0)).sum()),
                            sum)
        chance = 1.0 if total <= n else n / total
        take = dask.delayed(_bernoulli, pure=True)
        parts = dask.compute(*(take(part, m, label, chance, [seed, i], columns)
                               for i, (part, m) in enumerate(zip(
                                   self.frame.to_delayed(), mask.to_delayed(), strict=True))))
        return pd.concat(parts, ignore_index=True)

    def write(self, mask: dd.Series, columns: list[str], fmt: str) -> str:
        """The selection written one partition at a time: a partition is the most this
        process holds."""
        chosen = self.chosen(mask, columns)
        return write_frames((chosen.partitions[i].compute()
                             for i in range(chosen.npartitions)), fmt)


def _sums(part: pd.DataFrame, features: list[str], centre) -> np.ndarray:
    """Per feature: the sum of the finite values (or of their squared deviations from
    ``centre``), then their count."""
    values = part[features].to_numpy(np.float64)
    finite = np.isfinite(values)
    if centre is not None:
        values = (values - centre) ** 2
    return np.stack([np.where(finite, values, 0.0).sum(axis=0), finite.sum(axis=0)])


def _bernoulli(part, mask, label, chance, seed, columns) -> pd.DataFrame:
    keep = np.asarray(mask, dtype=bool) & (part[label].to_numpy() >= 0)
    if chance < 1.0:
        keep &= np.random.default_rng(seed).random(len(part)) < chance
    return part.loc[keep, columns]
