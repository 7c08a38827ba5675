"""A TLS scheduler and worker (`dask scheduler --protocol tls`) with certificates made here."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from conftest import blob_tracks, write_catalog

pytestmark = pytest.mark.slow  # a scheduler and a worker in their own processes

x509 = pytest.importorskip("cryptography.x509")
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.x509.oid import NameOID  # noqa: E402

DASK = shutil.which("dask", path=os.pathsep.join([os.path.dirname(sys.executable),
                                                  os.environ.get("PATH", "")]))
if DASK is None:
    pytest.skip("the dask command is not installed", allow_module_level=True)


def _name(common_name):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _write_key(key, path):
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))


def make_authority(directory, name):
    """A self-signed certificate authority, and a certificate + key it signed for 127.0.0.1.

    Returns the paths ``(ca_file, cert, key)``.
    """
    directory.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    authority = _name(f"{name} CA")
    ca = (x509.CertificateBuilder().subject_name(authority).issuer_name(authority)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - dt.timedelta(minutes=5))
          .not_valid_after(now + dt.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(_name("127.0.0.1")).issuer_name(ca.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
                critical=False)
            .sign(ca_key, hashes.SHA256()))
    paths = directory / "ca.pem", directory / "cert.pem", directory / "key.pem"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_key(key, paths[2])
    return paths


@pytest.fixture(scope="module")
def certificates(tmp_path_factory):
    return make_authority(tmp_path_factory.mktemp("pki"), "cluster")


@pytest.fixture(scope="module")
def tls_cluster(certificates, tmp_path_factory):
    """A TLS-only scheduler and one worker on 127.0.0.1; every process stopped after."""
    import socket

    from distributed import Client, Security

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    address = f"tls://127.0.0.1:{port}"
    ca, cert, key = map(str, certificates)
    tls = ["--tls-ca-file", ca, "--tls-cert", cert, "--tls-key", key]
    logs = open(tmp_path_factory.mktemp("logs") / "cluster.log", "w")  # noqa: SIM115
    common = {"stdout": logs, "stderr": subprocess.STDOUT, "start_new_session": True}
    processes = [subprocess.Popen([DASK, "scheduler", "--protocol", "tls", "--host",
                                   "127.0.0.1", "--port", str(port), "--dashboard-address",
                                   "127.0.0.1:0", *tls], **common)]
    processes.append(subprocess.Popen([DASK, "worker", address, "--host", "127.0.0.1",
                                       "--nthreads", "2", "--no-dashboard", *tls], **common))
    security = Security(tls_ca_file=ca, tls_client_cert=cert, tls_client_key=key,
                        require_encryption=True)
    try:
        with Client(address, security=security, timeout=30) as client:
            client.wait_for_workers(1, timeout=60)
        yield address
    finally:
        for process in processes:
            os.killpg(process.pid, signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        logs.close()


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    return write_catalog(blob_tracks(2_000, seed=4), tmp_path_factory.mktemp("c") / "cat")


def _run(out, scheduler, catalog, *settings, timeout=300):
    command = [sys.executable, "-m", "sonicatlas.cli", "run", "cluster-tracks", "--out",
               str(out), "--scheduler", scheduler, "--set", f"input={catalog}", "--set", "k=3"]
    for text in settings:
        command += ["--set", text]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout)


def _tls(ca, cert, key):
    return f"cluster.tls={json.dumps({'ca_file': str(ca), 'cert': str(cert), 'key': str(key)})}"


def _one_line_error(finished):
    assert finished.returncode == 2, finished.stdout + finished.stderr
    lines = finished.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), finished.stderr
    return lines[0]


def test_a_run_on_a_tls_scheduler_with_the_certificates(tls_cluster, certificates, catalog,
                                                        tmp_path):
    finished = _run(tmp_path / "run", tls_cluster, catalog, _tls(*certificates))
    assert finished.returncode == 0, finished.stdout + finished.stderr
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["scheduler"] == tls_cluster and manifest["rows"]["rows_accepted"] == 2_000


def test_a_tls_scheduler_without_certificates_is_one_line(tls_cluster, catalog, tmp_path):
    line = _one_line_error(_run(tmp_path / "run", tls_cluster, catalog))
    assert "set cluster.tls (ca_file, cert, key)" in line and tls_cluster in line
    assert list(tmp_path.iterdir()) == []


def test_a_missing_certificate_file_is_one_line(tls_cluster, certificates, catalog, tmp_path):
    ca, _, key = certificates
    line = _one_line_error(_run(tmp_path / "run", tls_cluster, catalog,
                                _tls(ca, tmp_path / "nope.pem", key)))
    assert f"cluster.tls.cert: no such file {tmp_path / 'nope.pem'}" in line
    assert list(tmp_path.iterdir()) == []


def test_a_key_that_is_not_the_certificates_is_one_line(tls_cluster, certificates, catalog,
                                                        tmp_path):
    ca, cert, _ = certificates
    other_key = tmp_path / "other.pem"
    _write_key(ec.generate_private_key(ec.SECP256R1()), other_key)
    line = _one_line_error(_run(tmp_path / "run", tls_cluster, catalog,
                                _tls(ca, cert, other_key)))
    assert "cluster.tls: cannot use the certificates" in line


def test_certificates_of_another_authority_are_refused_in_one_line(tls_cluster, catalog,
                                                                   tmp_path):
    # a client whose certificate the cluster's authority did not sign is refused
    start = time.monotonic()
    line = _one_line_error(_run(tmp_path / "run", tls_cluster, catalog,
                                _tls(*make_authority(tmp_path / "pki", "stranger")),
                                "cluster.connect_timeout=5"))
    assert f"cannot reach the Dask scheduler at {tls_cluster}" in line
    assert "certificates belong to this cluster" in line
    assert time.monotonic() - start < 60
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pki"]


def _generate(out, scheduler, *settings):
    command = [sys.executable, "-m", "sonicatlas.cli", "generate", "tracks", "--rows", "3000",
               "--rows-per-partition", "1000", "--out", str(out), "--scheduler", scheduler]
    for text in settings:
        command += ["--set", text]
    return subprocess.run(command, capture_output=True, text=True, timeout=300)


def test_generate_on_a_tls_scheduler_with_the_certificates(tls_cluster, certificates, tmp_path):
    import pandas as pd

    finished = _generate(tmp_path / "cat", tls_cluster, _tls(*certificates))
    assert finished.returncode == 0, finished.stdout + finished.stderr
    assert f"Dask: {tls_cluster}" in finished.stdout
    tracks = pd.read_parquet(tmp_path / "cat")
    assert len(tracks) == 3000 and tracks["track_id"].is_unique


def test_generate_on_a_tls_scheduler_without_certificates_is_one_line(tls_cluster, tmp_path):
    line = _one_line_error(_generate(tmp_path / "cat", tls_cluster))
    assert "set cluster.tls (ca_file, cert, key)" in line and tls_cluster in line
    assert list(tmp_path.iterdir()) == []
