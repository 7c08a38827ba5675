"""segment-listeners: group listeners by what they play.

Read a listening log, check every listen (bad ones go to a rejects table with a reason), resolve
it against the tracks of a cluster-tracks run, build one row per user (audio profile, share of each
track cluster, diversity, volume, recency, hour and weekday rhythm), scale it, project it with
PCA, cluster it across the workers, name the segments, and write a run directory.
"""

from __future__ import annotations

import dask
import dask.dataframe as dd
import numpy as np
import pandas as pd
from distributed import futures_of, wait

from sonicatlas.config import SegmentListenersConfig
from sonicatlas.contract import CLUSTER, REASON, TRACK_ROW
from sonicatlas.evaluate import agreement
from sonicatlas.io.checks import split
from sonicatlas.listeners import segments
from sonicatlas.listeners.checks import check_listens
from sonicatlas.listeners.users import user_features
from sonicatlas.modeling.fit import fit_model
from sonicatlas.runs import outputs, run_maps
from sonicatlas.runs.directory import run_job, versions
from sonicatlas.visual import maps
from sonicatlas.visual.segment_report import write_segment_report

NAME = "segment-listeners"
Config = SegmentListenersConfig


def run(config: SegmentListenersConfig, out: str | None = None, overwrite: bool = False,
        echo=print) -> outputs.RunSummary:
    """Run the job; return a summary of what was written to ``out``."""
    return run_job(NAME, _segment, config, out, overwrite, echo)


def _segment(config, client, run_dir, stage, echo) -> outputs.RunSummary:
    options = config.storage_options
    with stage("read tracks run"):
        # Every worker holds the tracks' compact lookup; the log is resolved where it is read.
        lookup, track_names = segments.run_track_lookup(config.tracks_run, options, np.float32)
        lookup = lookup.share(client)
        wait(futures_of(lookup.data))
    with stage("read + validate + user features"):
        listens = dd.read_parquet(config.listens, storage_options=options)
        checked = check_listens(listens, lookup, now=config.now)
        accepted, rejects = split(checked)
        users = segments.user_matrix_frame(
            user_features(accepted, lookup, len(track_names), now=config.now))
        # One pass over the log gives the users, the rejects and the count of accepted listens
        # (a frame of their number of rows and no columns): the log itself is never held.
        users, rejects, accepted = dask.persist(
            users, rejects.drop(columns=TRACK_ROW),
            accepted.map_partitions(lambda f: pd.DataFrame(index=pd.RangeIndex(len(f)))))
        wait([users, rejects, accepted])
        counts = outputs.split_row_counts(accepted, rejects, len(listens), config.largest_k)
        attributes = (dd.read_parquet(config.users, storage_options=options)
                      if config.users else None)
        users, attributes = segments.coalesce_users(users, len(users), attributes)
        users = users.persist()
        wait(users)
    columns = segments.clustering_columns(len(track_names))
    fitted = fit_model(users, columns, config, stage, echo)
    for name, table in fitted.tables.items():
        run_dir.write_table(f"summary/{name}", table)
    model, pca, clusters = fitted.model, fitted.pca, fitted.clusters
    names = segments.name_segments(model.centers, columns, track_names, config.names)

    with stage("assign"):
        scored = model.score_frame(users, [segments.USER_ID, *columns], clusters.labeler)
        if attributes is not None:
            scored = scored.merge(attributes, on=segments.USER_ID, how="left")
        scored = scored.persist()
        wait(scored)
    with stage("write tables"):
        extra = [c for c in (attributes.columns if attributes is not None else [])
                 if c != segments.USER_ID]
        run_dir.write_table("assignments", scored[[segments.USER_ID, CLUSTER, "distance",
                                                   "pc1", "pc2", *extra]])
        run_dir.write_table("summary/rejects", outputs.rejects(rejects))
        profiles = segments.segment_profiles(scored, columns, names)
        run_dir.write_table("summary/segment_profiles", profiles)
        run_dir.write_table("summary/pca", outputs.pca_table(pca, tuple(columns)))
        model.save(f"{run_dir.path}/model", names, options)
        taste = None
        if "taste_group" in extra:  # planted ground truth of generated logs
            table = scored.groupby([CLUSTER, "taste_group"]).size().compute()
            taste = agreement.agreement(table.unstack(fill_value=0).to_numpy())
            run_dir.write_table("summary/taste_agreement", pd.DataFrame([taste]))
    with stage("maps"):
        images = run_maps.render_maps(scored, names, profiles, config.map, ())
        maps.save_png(images["clusters.png"], f"{run_dir.path}/maps/segments.png", options)
        maps.save_png(images["density.png"], f"{run_dir.path}/maps/density.png", options)

    summary = outputs.RunSummary.build(config, config.listens, counts, clusters, pca,
                                       profiles, stage.seconds, client)
    manifest = {"job": NAME, "finished": summary.finished,
                "config": config.model_dump(mode="json"), "versions": versions(),
                "input": {"listens": config.listens, "users": config.users,
                          "tracks_run": config.tracks_run, "users_clustered": len(users)},
                "rows": counts, "k": summary.k, "clustering": summary.clustering,
                "segments": summary.clusters, "taste_agreement": taste,
                "seconds": summary.seconds, "scheduler": summary.scheduler,
                "reject_column": REASON}
    run_dir.write_json("manifest.json", manifest)
    with stage("report"):
        write_segment_report(run_dir.path, options)
    return summary
