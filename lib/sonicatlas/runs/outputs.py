"""The tables and records a cluster-tracks run writes, built from the computed pieces."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace

import dask
import dask.dataframe as dd
import numpy as np
import pandas as pd
from dask.dataframe.utils import meta_nonempty

from sonicatlas import persisted
from sonicatlas.contract import (
    CLUSTER,
    DETAIL,
    DISTANCE,
    PC1,
    PC2,
    POSITION,
    REASON,
    SOURCE_FILE,
    SOURCE_LINE,
    TRACK_ID,
    method_cluster,
    projection_columns,
)
from sonicatlas.errors import InputError
from sonicatlas.io.catalog import read_columns
from sonicatlas.modeling.model import with_scores
from sonicatlas.runs.directory import versions
from sonicatlas.summaries.digest import iterations_said


def row_counts(checked: dd.DataFrame, rows_in_files: int, k: int) -> dict:
    """Rows read, accepted and rejected (by reason); checks they add up and that k fits.

    Raises
    ------
    InputError
        Fewer accepted rows than clusters.
    """
    return _tally(_reason_counts(checked).compute().groupby(level=0).sum(), rows_in_files, k)


def split_row_counts(accepted: dd.DataFrame, rejects: dd.DataFrame, rows_in_files: int,
                     k: int, merged: int = 0) -> dict:
    """:func:`row_counts` of a check already split into accepted and rejected rows;
    ``merged`` listings of a track are neither (``rows_merged``)."""
    reasons, n_accepted = dd.compute(_reason_counts(rejects), accepted.shape[0])
    reasons = reasons.groupby(level=0).sum()
    return _tally(pd.concat([reasons, pd.Series({"accepted": n_accepted})]), rows_in_files, k,
                  merged)


def _reason_counts(frame: dd.DataFrame) -> dd.Series:
    # Per-partition counts, summed by the caller: dask's own value_counts starts a shuffle.
    return frame[REASON].map_partitions(
        lambda s: s.fillna("accepted").value_counts(), meta=("count", "int64"))


def _tally(reasons: pd.Series, rows_in_files: int, k: int, merged: int = 0) -> dict:
    read = int(reasons.sum()) + merged
    if read != rows_in_files:  # every row read must be accounted for
        raise RuntimeError(f"read {read} rows but the files hold {rows_in_files}")
    accepted = int(reasons.get("accepted", 0))
    if accepted < k:
        raise InputError(f"k={k} is larger than the number of valid rows ({accepted} of "
                         f"{read} read); lower k or fix the input (see the reasons: "
                         f"{reasons.drop('accepted', errors='ignore').to_dict()})")
    rejected = reasons.drop("accepted", errors="ignore").sort_values(ascending=False)
    counts = {"rows_read": read, "rows_accepted": accepted,
              "rows_rejected": read - accepted - merged,
              "reject_reasons": {str(r): int(n) for r, n in rejected.items()}}
    if merged:  # a track listed several times (same id and features): one track
        counts["rows_merged"] = merged
    return counts


def scored_columns(features: tuple[str, ...], carry: tuple[str, ...]) -> list[str]:
    """Columns kept next to the scores: id, carried metadata, features (for profiles)."""
    return [TRACK_ID, *carry, *features]


def score_tracks(accepted: dd.DataFrame, model, labeler=None, methods: dict | None = None
                 ) -> dd.DataFrame:
    """Lazy :meth:`~sonicatlas.modeling.model.ClusterModel.score_partition` of every partition
    of ``accepted``, with ``cluster_<method>`` for each fitted method in ``methods``.

    The methods enter the graph once, as one delayed object (a sampled method may carry
    thousands of sample points), rather than once per partition's task.
    """
    if not methods:
        return accepted.map_partitions(model.score_partition, labeler)
    meta = model.score_partition(meta_nonempty(accepted._meta), labeler, methods).iloc[:0]
    return accepted.map_partitions(model.score_partition, labeler, dask.delayed(methods),
                                   meta=meta)


def scored_tracks(accepted: dd.DataFrame, scores: dd.DataFrame, features: tuple[str, ...],
                  carry: tuple[str, ...], reread: dd.DataFrame | None = None) -> dd.DataFrame:
    """Lazy accepted rows (:func:`scored_columns`) with their scores, partition by partition.

    ``scores`` comes from ``accepted.map_partitions(model.score_partition)``, so partition ``i`` of
    each holds the same rows in the same order; joining them costs a column assignment.
    ``reread`` (:func:`sonicatlas.io.catalog.read_columns`) gives the columns ``accepted``
    does not hold: each partition reads them again and takes its rows by their ``_pos``.
    """
    columns = scored_columns(features, carry)
    # Each partition's task takes the persisted rows and scores as they are held (no alias
    # task, no column-selection task of its own, both of which dask would count as a second
    # copy of the partition) and selects the columns itself.
    if reread is None:
        def join(frame: pd.DataFrame, scored: pd.DataFrame) -> pd.DataFrame:
            return with_scores(frame[columns], scored)

        return persisted.map_partitions(join, accepted, scores,
                                        meta=join(accepted._meta, scores._meta))
    kept = [c for c in columns if c in accepted.columns]

    def join_read(frame: pd.DataFrame, scored: pd.DataFrame, read: pd.DataFrame
                  ) -> pd.DataFrame:
        return with_scores(with_read_rows(frame[[*kept, POSITION]], read)[columns], scored)

    return persisted.map_partitions(join_read, accepted, scores, reread,
                                    meta=join_read(accepted._meta, scores._meta, reread._meta))


def with_read_rows(frame: pd.DataFrame, read: pd.DataFrame) -> pd.DataFrame:
    """``frame`` (one partition, with ``_pos``) beside the columns of ``read`` it lacks, taken
    from the same partition as read again, at each row's position; ``_pos`` is dropped."""
    rows = frame[POSITION].to_numpy() & 0xFFFFFFFF
    if len(rows) and rows.max() >= len(read):
        raise InputError(f"the input has {len(read):,} rows in a partition that had more when "
                         "the run began: it changed while the job ran")
    taken = read[[c for c in read.columns if c not in frame.columns]].iloc[rows]
    taken.index = frame.index
    return pd.concat([frame.drop(columns=[POSITION]), taken], axis=1)


def carry_reading(mode: str, rows: int, client) -> str:
    """``hold`` or ``reread`` (see the config's ``carry_reading``) for a catalog of ``rows``.

    ``auto`` rereads when the rows, at :data:`HELD_BYTES_PER_ROW`, would take more than a
    third of the workers' summed memory limits (workers without a limit count the machine's
    memory once).
    """
    if mode != "auto":
        return mode
    limits = [w.get("memory_limit") or 0 for w in client.scheduler_info()["workers"].values()]
    if not limits or not all(limits):
        import psutil  # a dependency of distributed

        limits = [*filter(None, limits), psutil.virtual_memory().total]
    return "reread" if rows * HELD_BYTES_PER_ROW > sum(limits) / 3 else "hold"


#: what an accepted row holds with its carried columns, roughly (measured: 171 bytes for the
#: generated catalog, ~280 for the real spotify_songs.csv; docs/benchmarks.md)
HELD_BYTES_PER_ROW = 200


def with_projections(scores: dd.DataFrame, placed: dd.DataFrame) -> dd.DataFrame:
    """Lazy ``scores`` with the projections' columns (:func:`sonicatlas.modeling.projections.
    project_tracks`), partition by partition: both hold the accepted rows in the same order."""
    return dd.map_partitions(with_scores, scores, placed, align_dataframes=False)


def assignments(scored: dd.DataFrame, carry: tuple[str, ...], methods=(), projections=()
                ) -> dd.DataFrame:
    """Lazy ``assignments/`` table: one row per accepted track, with ``cluster_<method>`` for
    each compared method in ``methods`` and ``<name>1``, ``<name>2`` for each projection in
    ``projections`` other than PCA."""
    extra = [c for name in projections if name != "pca" for c in projection_columns(name)]
    return scored[[TRACK_ID, CLUSTER, DISTANCE, PC1, PC2, *extra,
                   *map(method_cluster, methods), *carry]]


def query_data(scored: dd.DataFrame, model) -> dd.DataFrame:
    """Lazy ``query/`` table: ``track_id`` and the features as float32 z-scores (the run's
    scaler), one column per feature.

    Partition ``i`` holds the rows of ``assignments/`` partition ``i``, in the same order, so a
    query reads the features it needs here and the few metadata rows it shows there.
    """
    mean = np.asarray(model.scale_mean, dtype=np.float64)
    std = np.asarray(model.scale_std, dtype=np.float64)
    names = list(model.features)

    def standardise(part: pd.DataFrame) -> pd.DataFrame:
        z = ((part[names].to_numpy(dtype=np.float64) - mean) / std).astype(np.float32)
        out = pd.DataFrame(z, columns=names, index=part.index, copy=False)
        out.insert(0, TRACK_ID, part[TRACK_ID])  # same index: no copy of the ids
        return out

    meta = pd.DataFrame({TRACK_ID: pd.Series(dtype=scored[TRACK_ID].dtype),
                         **{n: pd.Series(dtype=np.float32) for n in names}})
    return scored[[TRACK_ID, *names]].map_partitions(standardise, meta=meta)


def rejects(rejected: dd.DataFrame, reread: dd.DataFrame | None = None,
            carry: tuple[str, ...] = ()) -> dd.DataFrame:
    """Lazy ``summary/rejects`` table: the rows as read, the reason, and where they were.

    ``reread`` (:func:`sonicatlas.io.catalog.read_columns`) gives the carried columns the
    rejected rows were not read with; the ``carry`` columns then take the place they have
    when read with the rest.
    """
    def locate(frame: pd.DataFrame, read: pd.DataFrame | None = None) -> pd.DataFrame:
        out = frame if read is None else _in_read_order(with_read_rows(frame, read),
                                                        list(frame.columns), carry)
        out = out.drop(columns=[POSITION], errors="ignore")
        out["partition"] = (frame[POSITION].to_numpy() >> 32).astype(np.int32)
        out["row"] = (frame[POSITION].to_numpy() & 0xFFFFFFFF).astype(np.int64)
        return out
    if reread is None:
        return rejected.map_partitions(locate)
    return dd.map_partitions(locate, rejected, reread, align_dataframes=False,
                             meta=locate(rejected._meta, reread._meta))


def rejects_reread(tracks, rejects: dd.DataFrame, carry: tuple[str, ...],
                   held: tuple[str, ...]) -> dd.DataFrame | None:
    """The carried columns the rejects were not read with (:func:`rejects`' ``reread``), read
    again from only the partitions that hold a reject; None if there are none to read."""
    missing = tuple(c for c in carry if c not in held)
    if not missing:
        return None
    counts = rejects.map_partitions(len).compute()
    return read_columns(tracks, missing, partitions={i for i, n in enumerate(counts) if n})


def _in_read_order(frame: pd.DataFrame, first: list[str], carry: tuple[str, ...]
                   ) -> pd.DataFrame:
    # The carried columns where the first of them was read, or else before the columns the
    # reading adds (where the row came from, why it was rejected).
    later = (SOURCE_FILE, SOURCE_LINE, REASON, DETAIL, POSITION)
    at = next((i for i, c in enumerate(first) if c in carry or c in later), len(first))
    rest = [c for c in first if c not in carry and c in frame.columns]
    before = [c for c in first[:at] if c not in carry]
    return frame[[*before, *(c for c in carry if c in frame.columns), *rest[len(before):]]]


def pca_table(pca, features: tuple[str, ...]) -> pd.DataFrame:
    """``summary/pca``: per component, explained variance (ratio) and the loadings."""
    table = pd.DataFrame(pca.components_, columns=list(features))
    table.insert(0, "explained_variance_ratio", pca.explained_variance_ratio_)
    table.insert(0, "explained_variance", pca.explained_variance_)
    table.insert(0, "component", [f"pc{i + 1}" for i in range(len(table))])
    return table


@dataclass(frozen=True)
class RunSummary:
    """What a run did, for the console and (with more detail) ``manifest.json``."""

    out: str
    input: str
    counts: dict
    k: int
    clusters: list[dict]
    inertia: float
    n_iter: int
    explained_variance_ratio: list[float]
    seconds: dict[str, float]
    scheduler: str
    dashboard: str | None
    #: algorithm, k sweep choice, compared methods and how each was fitted
    clustering: dict = field(default_factory=dict)
    finished: str = field(default_factory=lambda: dt.datetime.now(dt.UTC).isoformat())

    @classmethod
    def build(cls, config, source, counts, clustering, pca, profiles, seconds, client):
        clusters = profiles[[CLUSTER, "name", "size", "share"]].to_dict("records")
        kmeans = clustering.kmeans
        return cls("", source, counts, len(clusters), clusters, kmeans.inertia_, kmeans.n_iter_,
                   pca.explained_variance_ratio_.tolist(), dict(seconds),
                   client.scheduler.address, client.dashboard_link,
                   clustering=clustering.manifest)

    def moved_to(self, out: str) -> RunSummary:
        return replace(self, out=out)

    def with_seconds(self, seconds: dict[str, float]) -> RunSummary:
        """The summary with the stages' seconds (and the finishing time) brought up to now."""
        return replace(self, seconds=dict(seconds),
                       finished=dt.datetime.now(dt.UTC).isoformat())

    def manifest(self, catalog, config) -> dict:
        """The manifest: config, versions, input fingerprint, counts, timings, metrics."""
        return {
            "job": "cluster-tracks",
            "finished": self.finished,
            "config": config.model_dump(mode="json"),
            "versions": versions(),
            "input": {"url": self.input, "files": len(catalog.files), "rows": catalog.rows,
                      "fingerprint": catalog.fingerprint, "columns": catalog.sources},
            "rows": self.counts,
            "k": self.k,
            "clustering": self.clustering,
            "clusters": self.clusters,
            "metrics": {"inertia": self.inertia, "kmeans_iterations": self.n_iter,
                        "pca_explained_variance_ratio": self.explained_variance_ratio},
            "seconds": self.seconds,
            "scheduler": self.scheduler,
        }

    def text(self) -> str:
        """A few lines for the end of a run in the terminal."""
        c = self.counts
        lines = [f"Run written to {self.out}",
                 f"  rows in {c['rows_read']:,}, accepted {c['rows_accepted']:,}, "
                 f"rejected {c['rows_rejected']:,}"
                 + (f", {c['rows_merged']:,} repeated listings merged into their track"
                    if c.get("rows_merged") else "")]
        for reason, n in list(c["reject_reasons"].items())[:5]:
            lines.append(f"    {n:>10,}  {reason}")
        algorithm = self.clustering.get("algorithm", "kmeans")
        lines.append(f"  k={self.k} ({algorithm}); KMeans cost {self.inertia:,.1f}, "
                     f"{iterations_said(self.n_iter, self.clustering.get('engine'))}")
        if "why" in self.clustering.get("k_sweep", {}):
            lines.append(f"    k chosen because {self.clustering['k_sweep']['why']}")
        for row in self.clusters:
            lines.append(f"    {row[CLUSTER]:>3}  {row['size']:>10,}  {row['share']:6.1%}  "
                         f"{row['name']}")
        total = sum(self.seconds.values())
        lines.append(f"  seconds: {total:.1f} total; " + ", ".join(
            f"{k} {v:.1f}" for k, v in self.seconds.items()))
        return "\n".join(lines)


