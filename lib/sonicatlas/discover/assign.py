"""Place a new catalog's tracks into an existing run's clusters, without refitting.

The run's ``model/`` (scaler, PCA, centres: plain numbers, checked when loaded) scores each
partition of the new catalog on its worker, after the same reading and checks as the job
(:func:`sonicatlas.io.checks.validate`: the same reasons, duplicates included). The output
directory holds ``assignments/`` (the run's layout: cluster, distance to its centre, pc1, pc2
and the carried metadata), ``rejects/`` and ``manifest.json`` naming the run; it is written
beside its target and moved into place only when complete.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from dataclasses import dataclass

import dask
import pandas as pd

from sonicatlas import storage
from sonicatlas.contract import CLUSTER
from sonicatlas.discover.querydata import read_run_model
from sonicatlas.errors import OutputExistsError
from sonicatlas.io import catalog, checks
from sonicatlas.runs import outputs
from sonicatlas.runs.directory import versions


@dataclass(frozen=True)
class Assigned:
    """What :func:`assign_catalog` wrote.

    Attributes
    ----------
    out : str
    counts : dict
        ``rows_read``, ``rows_accepted``, ``rows_rejected`` and ``reject_reasons``.
    clusters : pandas.DataFrame
        ``cluster``, ``cluster_name``, ``tracks``, ``share`` of the accepted tracks.
    seconds : float
    """

    out: str
    counts: dict
    clusters: pd.DataFrame
    seconds: float


def default_out() -> str:
    """``runs/assign-<UTC timestamp>``."""
    return f"runs/assign-{dt.datetime.now(dt.UTC):%Y%m%d-%H%M%S}"


def assign_catalog(run: str, input: str, out: str, client, columns: dict | None = None,
                   overwrite: bool = False, storage_options: dict | None = None) -> Assigned:
    """Score a new catalog with a run's model and write its assignments and rejects.

    Parameters
    ----------
    run : str
        A cluster-tracks run directory.
    input : str
        The new catalog: Parquet file, directory or glob (any fsspec URL the workers reach).
    out : str
        The directory to create.
    client : distributed.Client
        The catalog's footers are read, and its partitions checked and scored, on its workers.
    columns : dict, optional
        The input's column names mapped onto the contract's, ``{their_name: ours}``.
    overwrite : bool
        Replace an existing ``out``.

    Returns
    -------
    Assigned

    Raises
    ------
    InputError
        A bad run or model, or a catalog the job would refuse (missing or mistyped
        columns, no rows, a corrupt file); checked before anything is written.
    OutputExistsError
        ``out`` exists and ``overwrite`` is false.
    """
    started = time.perf_counter()
    _, _, manifest, model, names = read_run_model(
        run, storage_options, purpose="tracks are placed into")
    fs, target = storage.resolve(out, storage_options)
    if storage.occupied(fs, target) and not overwrite:
        raise OutputExistsError(f"{out} already exists; choose another --out or pass "
                                "--overwrite")
    tracks = catalog.open_catalog(input, columns or {}, model.features, client,
                                  storage_options)
    carry = tracks.carried
    accepted, rejects, _ = checks.validate(catalog.read_catalog(tracks, carry),
                                           model.features)
    scores = accepted.map_partitions(model.score_partition)
    scored = outputs.scored_tracks(accepted, scores, model.features, carry)
    with storage.replacing(fs, target) as partial:
        url = fs.unstrip_protocol(partial)
        writes = [outputs.assignments(scored, carry).to_parquet(
                      f"{url}/assignments", write_index=False, compute=False,
                      storage_options=storage_options),
                  outputs.rejects(rejects).to_parquet(
                      f"{url}/rejects", write_index=False, compute=False,
                      storage_options=storage_options)]
        sizes = scores[CLUSTER].map_partitions(lambda s: s.value_counts(),
                                               meta=("count", "int64"))
        _, _, sizes = dask.compute(*writes, sizes)
        counts = outputs.split_row_counts(accepted, rejects, tracks.rows, 0)
        clusters = _cluster_table(sizes.groupby(level=0).sum(), names)
        seconds = time.perf_counter() - started
        record = {"job": "assign", "finished": dt.datetime.now(dt.UTC).isoformat(),
                  "run": str(run), "run_finished": manifest.get("finished"),
                  "model": {"features": list(model.features), "k": model.k},
                  "input": {"url": tracks.url, "files": len(tracks.files), "rows": tracks.rows,
                            "fingerprint": tracks.fingerprint, "columns": tracks.sources},
                  "rows": counts, "clusters": clusters.to_dict("records"),
                  "seconds": round(seconds, 3), "versions": versions()}
        with fs.open(f"{partial}/manifest.json", "w") as handle:
            json.dump(record, handle, indent=2, default=str)
    return Assigned(str(out), counts, clusters, seconds)


def _cluster_table(sizes: pd.Series, names: list[str]) -> pd.DataFrame:
    table = pd.DataFrame({CLUSTER: range(len(names)), "cluster_name": names})
    table["tracks"] = [int(sizes.get(c, 0)) for c in table[CLUSTER]]
    total = table["tracks"].sum()
    table["share"] = table["tracks"] / total if total else 0.0
    return table
