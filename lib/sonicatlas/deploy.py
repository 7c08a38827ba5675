"""The three ways to a Dask cluster: a LocalCluster on loopback, a remote scheduler, a factory.

- A LocalCluster binds everything to 127.0.0.1 in both modes: worker processes and their
  servers (``processes: true``), or in-process workers whose own HTTP servers would otherwise
  listen on every interface (``processes: false``). The dashboard address printed is the one
  the scheduler actually bound.
- A remote scheduler at ``tls://`` is reached with ``cluster.tls``'s certificates and
  encryption required (:func:`security`).
- ``cluster.factory`` names a cluster class (dask-jobqueue, dask-kubernetes, dask-gateway,
  Coiled, distributed's own) that :func:`build_factory` imports and builds.
"""

from __future__ import annotations

import importlib
import ssl
from pathlib import Path

import dask
from distributed import LocalCluster, Security

from sonicatlas.config import ClusterConfig
from sonicatlas.errors import ConfigError

_ALL_INTERFACES = {"", "0.0.0.0", "::", "[::]"}


def local_cluster(config: ClusterConfig, n_workers: int) -> LocalCluster:
    """A LocalCluster of ``n_workers`` with every server on 127.0.0.1 (the dashboard aside)."""
    # The scheduler (in this process) reads the setting once, as it starts.
    with dask.config.set({"distributed.scheduler.worker-saturation": config.worker_saturation}):
        return LocalCluster(
            n_workers=n_workers,
            threads_per_worker=config.threads_per_worker,
            processes=config.processes,
            memory_limit=config.memory_limit,
            dashboard_address=config.dashboard_address,
            worker_dashboard_address="127.0.0.1:0",
            # Process workers listen on loopback; thread workers talk in-process (inproc://
            # addresses take no host) and only their HTTP servers listen.
            **({"host": "127.0.0.1"} if config.processes else {}),
        )


def bound_dashboard(cluster: LocalCluster) -> str | None:
    """The dashboard URL of a LocalCluster's scheduler, at the address it actually bound."""
    server = getattr(cluster.scheduler, "http_server", None)
    if server is None:
        return None
    host = str(server.address)
    return f"http://{f'[{host}]' if ':' in host else host}:{server.port}/status"


def dashboard_is_open(address: str) -> bool:
    """Whether a ``dashboard_address`` listens on every interface (0.0.0.0, ::, or no host)."""
    host = address.rsplit(":", 1)[0] if ":" in address else address
    return host.strip() in _ALL_INTERFACES


def security(config: ClusterConfig) -> Security | None:
    """The ``distributed.Security`` for ``config.scheduler``; None for a plain ``tcp://`` one.

    Raises
    ------
    ConfigError
        A ``tls://`` scheduler without ``cluster.tls`` (nor dask's own TLS settings), a
        certificate file that is missing, or certificates that do not load (a key that does
        not match its certificate, a file that is not PEM).
    """
    tls = config.tls
    if tls is None:
        if (config.scheduler or "").startswith("tls://") and not dask.config.get(
                "distributed.comm.tls.ca-file", None):
            raise ConfigError(f"the scheduler {config.scheduler} speaks TLS: set cluster.tls "
                              "(ca_file, cert, key) to its certificates; see "
                              "conf/cluster/remote-tls.yaml")
        return None
    for key in ("ca_file", "cert", "key"):
        path = getattr(tls, key)
        if not Path(path).expanduser().is_file():
            raise ConfigError(f"cluster.tls.{key}: no such file {path}")
    result = Security(require_encryption=True,
                      tls_ca_file=str(Path(tls.ca_file).expanduser()),
                      tls_client_cert=str(Path(tls.cert).expanduser()),
                      tls_client_key=str(Path(tls.key).expanduser()))
    try:
        result.get_connection_args("client")  # loads the files now, not at connect time
    except (ssl.SSLError, OSError, ValueError) as exc:
        raise ConfigError(f"cluster.tls: cannot use the certificates {tls.cert}, {tls.key} "
                          f"and {tls.ca_file}: {exc}") from exc
    return result


def build_factory(config: ClusterConfig):
    """Import ``config.factory`` and build it with ``config.factory_options``.

    Returns
    -------
    A cluster object (``distributed.deploy.Cluster`` or anything a ``Client`` accepts).

    Raises
    ------
    ConfigError
        The class cannot be imported, or building it failed; the message says which.
    """
    module_name, _, class_name = config.factory.rpartition(".")
    try:
        factory = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"cluster.factory: cannot import {config.factory} ({exc}); is its "
                          "package installed?") from exc
    try:
        return factory(**config.factory_options)
    except Exception as exc:  # whatever the deployment library raises, said in one line
        raise ConfigError(f"cluster.factory: {config.factory}(**factory_options) failed: "
                          f"{exc.__class__.__name__}: {exc}") from exc
