"""What the reading commands share: --format, --out, --scheduler, --storage-option, and
printing a result.

A result is one or more tables. ``table`` prints them readably with the notes (which track was
the query, how many qualified) above; ``csv`` and ``json`` print only the data on standard
output, the notes going to standard error. ``--out`` writes the same text to a file, atomically.
"""

from __future__ import annotations

import contextlib
import io
import json

import click
import numpy as np
import pandas as pd
import yaml

FORMATS = ("table", "csv", "json")


def format_option(func):
    return click.option(
        "--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True,
        help="table: readable columns; csv or json: the data alone on standard output "
             "(notes go to standard error).")(func)


def out_option(func):
    return click.option(
        "--out", metavar="PATH",
        help="Write the result to PATH instead of standard output (a hidden file beside it, "
             "moved into place when complete).")(func)


def scheduler_option(func):
    return click.option(
        "--scheduler", metavar="ADDRESS",
        help="Run the per-partition work on this Dask scheduler (tcp://host:8786), whose "
             "workers must reach RUN. Default: threads of this process.")(func)


def storage_options_option(func):
    return click.option(
        "--storage-option", "storage_options", multiple=True, metavar="KEY=VALUE",
        callback=_storage_options,
        help="An fsspec option for reaching RUN on object storage, e.g. "
             "endpoint_url=http://127.0.0.1:9000 or client_kwargs.region_name=eu-west-1 "
             "(a dotted KEY nests; VALUE is read as YAML). Repeatable; the config's "
             "storage_options keys.")(func)


def _storage_options(ctx, param, pairs) -> dict:
    options: dict = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"takes KEY=VALUE, not {pair!r}")
        *parents, last = key.strip().split(".")
        node = options
        for name in parents:
            node = node.setdefault(name, {})
            if not isinstance(node, dict):
                raise click.BadParameter(f"{name!r} is given a value and nested keys")
        node[last] = yaml.safe_load(raw) if raw.strip() else None
    return options


@contextlib.contextmanager
def maybe_cluster(scheduler: str | None):
    """A client on ``scheduler`` while the block runs; none (dask's threads) without one."""
    if not scheduler:
        yield None
        return
    from sonicatlas.config import ClusterConfig
    from sonicatlas.runtime import connect
    with connect(ClusterConfig(scheduler=scheduler), echo=lambda m: click.echo(m, err=True)
                 ) as client:
        yield client


def _records(frame: pd.DataFrame) -> list[dict]:
    return json.loads(frame.to_json(orient="records", force_ascii=False, date_format="iso"))


def render(tables: dict[str, pd.DataFrame], fmt: str, notes: list[str],
           fields: dict | None = None) -> str:
    """The text of a result: its tables (the first is the main one) in ``fmt``."""
    if fmt == "json":
        body = dict(fields or {}) | {name: _records(t) for name, t in tables.items()}
        return json.dumps(body, indent=2, ensure_ascii=False, default=_plain)
    if fmt == "csv":
        if len(tables) == 1:
            frame = next(iter(tables.values()))
        else:  # several tables: one CSV, a section column naming each row's table
            frame = pd.concat([t.assign(section=name)[["section", *t.columns]]
                               for name, t in tables.items()], ignore_index=True)
        buffer = io.StringIO()
        frame.to_csv(buffer, index=False)
        return buffer.getvalue().rstrip("\n")
    parts = list(notes)
    for name, table in tables.items():
        if len(tables) > 1:
            parts.append(f"\n{name.replace('_', ' ').capitalize()}:")
        parts.append(table.to_string(index=False, float_format=lambda v: f"{v:.4f}")
                     if len(table) else "(none)")
    return "\n".join(parts)


def _plain(value):
    if isinstance(value, np.generic):
        return value.item()
    return str(value)


def emit(tables: dict[str, pd.DataFrame], fmt: str, out: str | None,
         notes: list[str] = (), fields: dict | None = None) -> None:
    """Print (or write to ``out``) a result; the notes go where they do not mix with data."""
    text = render(tables, fmt, list(notes) if out is None else [], fields)
    if out is None:
        if fmt != "table":
            for note in notes:
                click.echo(note, err=True)
        click.echo(text)
        return
    from sonicatlas import storage
    fs, target = storage.resolve(out)
    with storage.replacing(fs, target) as partial, fs.open(partial, "w") as handle:
        handle.write(text + "\n")
    for note in notes:
        click.echo(note, err=fmt != "table")
    click.echo(f"Wrote {out}", err=fmt != "table")
