"""`sonicatlas run` and `sonicatlas jobs`: the jobs registered under ``sonicatlas.jobs``."""

from __future__ import annotations

from importlib.metadata import entry_points

import click

from sonicatlas import storage
from sonicatlas.cli.common import EPILOG, user_errors, with_scheduler
from sonicatlas.config import load_config


def _jobs() -> dict:
    # Jobs register under this entry-point group (pyproject.toml), so lib/ never imports jobs/.
    return {ep.name: ep for ep in entry_points(group="sonicatlas.jobs")}


@click.command("run", epilog=EPILOG)
@click.argument("job", metavar="JOB")
@click.option("-c", "--config", "config_paths", type=click.Path(dir_okay=False),
              multiple=True, help="YAML config (see conf/); repeat to merge several, e.g. "
              "a job file and conf/cluster/remote.yaml. Unset options take their defaults.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a config value, e.g. --set k=8 --set kmeans.max_iter=50. "
                   "Repeatable.")
@click.option("--scheduler", metavar="ADDRESS",
              help="Run on this Dask scheduler (tcp://host:8786) instead of a LocalCluster; "
                   "the workers read the input themselves.")
@click.option("--out", metavar="DIR", help="Run directory (default: runs/<job>-<time>).")
@click.option("--overwrite", is_flag=True,
              help="Replace an existing run directory; only one a sonicatlas job wrote (its "
                   "manifest.json says so) is replaced, once the new run is complete.")
@user_errors
def run_command(job, config_paths, overrides, scheduler, out, overwrite) -> None:
    """Run JOB and write a run directory.

    \b
    JOB is one of:
      cluster-tracks     group a catalog's tracks by how they sound
      segment-listeners  group the users of a listening log by what they play
                         (needs a cluster-tracks run: --set tracks_run=RUN)
    `sonicatlas jobs` lists every job installed.

    The run is written to a hidden directory beside --out and moved into place only when it
    is complete, so a failed run leaves nothing behind. Ctrl-C stops the cluster, removes
    the partial run and exits with 130.
    """
    jobs = _jobs()
    if job not in jobs:
        raise click.BadParameter(f"unknown job {job!r}; available: {', '.join(sorted(jobs))}",
                                 param_hint="JOB")
    module = jobs[job].load()
    config = load_config(module.Config, config_paths, with_scheduler(overrides, scheduler))
    if out:  # a read-only or impossible --out fails here, in one line, not after the run
        storage.check_writable(*storage.resolve(out, config.storage_options), out)
    click.echo(f"sonicatlas {job}")
    summary = module.run(config, out=out, overwrite=overwrite, echo=click.echo)
    click.echo(summary.text())


@click.command("jobs")
def jobs_command() -> None:
    """List the jobs that `sonicatlas run` knows."""
    for name, ep in sorted(_jobs().items()):
        doc = (ep.load().__doc__ or "").strip().splitlines()
        click.echo(f"{name:<20} {doc[0] if doc else ''}")

