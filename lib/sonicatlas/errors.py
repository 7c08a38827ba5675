"""Exceptions shared across sonicatlas: user-facing problems the CLI reports without a traceback."""

from __future__ import annotations


class SonicatlasError(Exception):
    """Base class for errors caused by the user's input or configuration, not by a bug.

    The CLI prints the message and exits with ``exit_code``.
    """

    exit_code = 2


class InputError(SonicatlasError, ValueError):
    """Input files, paths, options or a column mapping cannot be used as given."""


class MissingColumnsError(InputError):
    """A column the contract requires is absent from the input (after column mapping)."""


class WrongTypeError(InputError):
    """A column has a type that cannot hold what the contract needs."""


class CorruptFileError(InputError):
    """A data file cannot be read; the message names it."""


class ConfigError(SonicatlasError, ValueError):
    """The configuration file or an override is invalid; the message names the key."""


class OutputExistsError(SonicatlasError, FileExistsError):
    """The output directory exists and overwriting was not asked for."""


class SchedulerUnreachableError(SonicatlasError, ConnectionError):
    """The remote Dask scheduler did not answer in time; the message names its address."""


class NoWorkersError(SonicatlasError, TimeoutError):
    """The scheduler had no workers for ``cluster.no_workers_timeout`` seconds."""
