"""cluster-tracks: group a catalog's tracks by how they sound.

Read a partitioned Parquet catalog, validate it (bad rows go to a rejects table with a reason),
build the scaled audio-feature matrix, project it with PCA, fit KMeans across the workers,
write every track's cluster and map coordinates (PCA's, and ICA's, UMAP's or t-SNE's when
asked for), per-cluster summaries, the model and the Datashader maps, and record a manifest
of what was done.
"""

from __future__ import annotations

from distributed import wait

from sonicatlas.config import ClusterTracksConfig
from sonicatlas.contract import CLUSTER, TRACK_ID
from sonicatlas.io import catalog, checks
from sonicatlas.io.duplicates import POOLED
from sonicatlas.modeling.fit import fit_model
from sonicatlas.modeling.projections import extra_projections, project_tracks, require_packages
from sonicatlas.runs import outputs, run_maps
from sonicatlas.runs.directory import run_job
from sonicatlas.runtime import show_progress
from sonicatlas.summaries.methods import method_tables
from sonicatlas.summaries.profiles import name_clusters
from sonicatlas.summaries.tables import build_summaries
from sonicatlas.synthetic.sample import sample_catalog
from sonicatlas.visual import maps, raster, silhouette
from sonicatlas.visual.report import write_report

NAME = "cluster-tracks"
Config = ClusterTracksConfig


def run(config: ClusterTracksConfig, out: str | None = None, overwrite: bool = False,
        echo=print) -> outputs.RunSummary:
    """Run the job; return a summary of what was written to ``out``."""
    return run_job(NAME, _cluster, config, out, overwrite, echo)


def _cluster(config, client, run_dir, stage, echo) -> outputs.RunSummary:
    extra = extra_projections(config.projections)  # none by default: no work at all
    require_packages(extra)
    with stage("check input"):
        source = config.input or sample_catalog(config.sample_rows)
        tracks = catalog.open_catalog(source, config.columns, config.features, client,
                                      config.storage_options)
        carry = config.carry if config.carry is not None else tracks.carried
        reading = outputs.carry_reading(config.carry_reading, tracks.rows, client)
    if reading == "reread":
        echo("Carried columns: read again when the tables are written (the catalog would "
             "fill over a third of the workers' memory; carry_reading: hold keeps them)")
    set_aside = sum(tracks.ingest_rejects_rows)
    echo(f"Input: {source} ({tracks.rows:,} rows in {len(tracks.files)} files"
         + (f", {set_aside:,} of them set aside by ingest)" if set_aside else ")"))

    with stage("read + validate"):
        # one read; from here on only the accepted rows (compact) and the rejects are held;
        # a catalog too large to hold is held without the carried columns (bar the genres
        # that repeated tracks pool) and without its ids (hashed to find the repeats), which
        # the tables' writes read again
        held = carry if reading == "hold" else tuple(c for c in carry if c in POOLED)
        ids = catalog.read_columns(tracks, (TRACK_ID,)) if reading == "reread" else None
        accepted, rejects, merged = checks.validate(catalog.read_catalog(tracks, held),
                                                    config.features, config.valid_ranges(),
                                                    ids=ids)
        reread = None
        if reading == "reread":
            reread = catalog.read_columns(tracks, (TRACK_ID, *(c for c in carry
                                                               if c not in held)))
        show_progress(accepted, rejects)
        counts = outputs.split_row_counts(accepted, rejects, tracks.rows, config.largest_k,
                                          merged)

    # a catalog too large to hold whole holds its features once: scaled again on each pass
    fitted = fit_model(accepted, config.features, config, stage, echo,
                       hold_scaled=reading == "hold")
    for name, table in fitted.tables.items():
        run_dir.write_table(f"summary/{name}", table)
    model, pca, clusters = fitted.model, fitted.pca, fitted.clusters
    names = name_clusters(model.centers, config.features, overrides=config.names)

    with stage("assign"):
        # only the four score columns are new data; the rest is the accepted rows, joined
        # partition by partition wherever the scored tracks are read
        # compared methods (if any) label every track here too, from the same z-scores
        scores = outputs.score_tracks(accepted, model, clusters.labeler,
                                      clusters.methods).persist()
        # the maps' bounds, taken from each partition's scores as they land (which also
        # waits for all of them)
        grid = run_maps.map_grid(scores, config.map)
    if extra:
        with stage("projections fit"):
            # fitted on the client on a sample stratified by cluster
            projected = project_tracks(accepted, scores[CLUSTER], model, extra,
                                       config.projection_sample, config.seed,
                                       config.projection_params)
        with stage("projections place"):
            # every other track placed by the fitted models on the workers
            scores = outputs.with_projections(scores, projected.placed).persist()
            wait(scores)
    scored = outputs.scored_tracks(accepted, scores, config.features, carry, reread)
    with stage("summaries"):
        # the map bins join the summaries' single pass over the scored tracks
        bins = raster.bin_reduction(grid, n_clusters=model.k, features=config.features)
        summaries, done = build_summaries(scored, model, pca, names, carry,
                                          counts["rows_accepted"], config.summary,
                                          also={"map_bins": bins}, methods=clusters.methods)
        profiles = summaries["cluster_profiles"]
    if clusters.methods:
        with stage("method labels"):
            summaries.update(method_tables(scored, scores, model, clusters.methods,
                                           summaries["silhouette"]))
    with stage("write tables"):
        # the workers write the large tables while the client writes the small ones, then
        # draws the maps and the report
        run_dir.write_table("assignments", outputs.assignments(scored, carry, clusters.methods,
                                                               extra), background=True)
        # the query data needs the ids alone: a reread run reads no other column for it
        ids = scored if reread is None else outputs.scored_tracks(
            accepted, scores, config.features, (), catalog.read_columns(tracks, (TRACK_ID,)))
        run_dir.write_table("query", outputs.query_data(ids, model), background=True)
        run_dir.write_table("summary/rejects", outputs.rejects(
            rejects, outputs.rejects_reread(tracks, rejects, carry, held)
            if reread is not None else None, carry), background=True)
        for name, table in summaries.items():  # the per-artist table is a dask one
            run_dir.write_table(f"summary/{name}", table, background=True)
        run_dir.write_table("summary/pca", outputs.pca_table(pca, config.features))
        model.save(f"{run_dir.path}/model", names, config.storage_options)
        if extra:
            projected.save(f"{run_dir.path}/model", config.seed, config.storage_options)
    with stage("maps"):
        for name, image in run_maps.map_images(done["map_bins"], grid, names, profiles,
                                              config.features,
                                              outputs.pca_table(pca, config.features)).items():
            maps.save_png(image, f"{run_dir.path}/maps/{name}", config.storage_options)
        for name, image in run_maps.projection_images(scores, extra, names, profiles,
                                                     config.map).items():
            maps.save_png(image, f"{run_dir.path}/maps/{name}", config.storage_options)
        image = silhouette.silhouette_image(**silhouette.labelling(summaries["silhouette"],
                                                                  profiles))
        if image is not None:
            maps.save_png(image, f"{run_dir.path}/maps/silhouette.png", config.storage_options)

    summary = outputs.RunSummary.build(config, source, counts, clusters, pca, profiles,
                                       stage.seconds, client)
    with stage("wait for writes"):
        run_dir.wait_for_writes()
    # the report shows the manifest as written: its stages, finish time and final path (the
    # report's own seconds are printed, not recorded)
    summary = summary.with_seconds(stage.seconds)
    manifest = summary.manifest(tracks, config) | {"carry_reading": reading}
    with stage("report"):
        write_report(run_dir.path, manifest, location=run_dir.location,
                     storage_options=config.storage_options)
    run_dir.write_json("manifest.json", manifest)
    return summary

