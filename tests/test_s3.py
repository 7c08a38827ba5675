"""Runs on object storage: a real S3-compatible server (moto's), read and written through s3fs.

The job reads its catalog from s3:// and writes its run there with worker processes; every
reader of a run (export, similar, the report, the explorer's loader) then takes the s3:// URL,
and gives what the same run written to a local disk gives.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from conftest import blob_tracks, run_job, write_catalog

pytest.importorskip("s3fs")
moto_server = pytest.importorskip("moto.server")

from sonicatlas.cli import main  # noqa: E402 - after the skips

BUCKET = "atlas"
KEY = SECRET = "testing"
PROCESSES = ["cluster.n_workers=1", "cluster.threads_per_worker=2", "cluster.processes=true",
             "cluster.dashboard_address=127.0.0.1:0"]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def options():
    """fsspec options reaching a moto S3 server on 127.0.0.1, with one empty bucket."""
    import s3fs

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=_free_port(),
                                            verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    found = {"key": KEY, "secret": SECRET, "endpoint_url": f"http://{host}:{port}"}
    s3fs.S3FileSystem(**found).mkdir(BUCKET)
    try:
        yield found
    finally:
        server.stop()


@pytest.fixture(scope="module")
def s3(options):
    import s3fs

    fs = s3fs.S3FileSystem(**options)
    fs.invalidate_cache()
    return fs


def cli_options(options: dict) -> list[str]:
    return [a for k, v in options.items() for a in ("--storage-option", f"{k}={v}")]


@pytest.fixture(scope="module")
def runs(tmp_path_factory, options, s3):
    """The same catalog clustered twice: from and to s3:// (worker processes), and locally."""
    root = tmp_path_factory.mktemp("s3")
    catalog = write_catalog(blob_tracks(3_000, seed=5), root / "catalog", parts=3)
    for part in sorted(catalog.iterdir()):
        s3.put_file(str(part), f"{BUCKET}/catalog/{part.name}")
    settings = ["k=3"]
    run_job(f"s3://{BUCKET}/runs/one", f"input=s3://{BUCKET}/catalog", *settings,
            f"storage_options={json.dumps(options)}", cluster=PROCESSES)
    run_job(root / "local", f"input={catalog}", *settings)
    s3.invalidate_cache()
    return f"s3://{BUCKET}/runs/one", root / "local"


def _read(url_or_path, name: str, options: dict) -> pd.DataFrame:
    remote = str(url_or_path).startswith("s3://")
    frame = pd.read_parquet(f"{url_or_path}/{name}", storage_options=options if remote else None)
    return frame.sort_values(list(frame.columns[:2]), ignore_index=True)


@pytest.mark.slow
@pytest.mark.parametrize("table", ["assignments", "query", "summary/cluster_profiles",
                                   "summary/rejects", "summary/pca", "model/centroids.parquet"])
def test_a_run_written_to_s3_holds_what_the_same_run_holds_on_a_local_disk(runs, options, table):
    remote, local = runs
    pd.testing.assert_frame_equal(_read(remote, table, options), _read(local, table, options))


@pytest.mark.slow
def test_the_run_is_committed_whole_on_s3_with_its_manifest(runs, s3):
    names = s3.ls(f"{BUCKET}/runs", detail=False)
    assert names == [f"{BUCKET}/runs/one"]  # no partial run left beside it
    manifest = json.loads(s3.cat_file(f"{BUCKET}/runs/one/manifest.json"))
    local = json.loads((runs[1] / "manifest.json").read_text())
    assert manifest["rows"] == local["rows"] and manifest["k"] == local["k"] == 3
    assert not s3.exists(f"{BUCKET}/runs/one/.owner.json")


class _Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.images, self.charts, self.title = [], 0, ""
        self._in_title = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self._in_title = tag == "title"
        if tag == "img":
            self.images.append(attrs.get("src", ""))
        if tag == "div" and "data-chart" in attrs:
            self.charts += 1

    def handle_data(self, data):
        if self._in_title:
            self.title += data


@pytest.mark.slow
def test_the_report_of_a_run_on_s3_is_written_there_and_opens(runs, s3):
    remote, local = runs
    text = s3.cat_file(f"{BUCKET}/runs/one/report.html").decode("utf-8")
    page, reference = _Page(), _Page()
    page.feed(text)
    reference.feed((local / "report.html").read_text(encoding="utf-8"))
    assert page.title == "sonicatlas report: one"
    assert remote in text  # the header says where the run is
    assert page.charts == reference.charts > 0
    png = s3.cat_file(f"{BUCKET}/runs/one/maps/clusters.png")
    import base64
    assert page.images == [f"data:image/png;base64,{base64.b64encode(png).decode()}"]


@pytest.mark.slow
def test_export_from_s3_gives_the_rows_pandas_selects_from_the_local_run(runs, options,
                                                                          tmp_path):
    remote, local = runs
    out = tmp_path / "cluster1.csv"
    result = CliRunner().invoke(main, ["export", remote, "--cluster", "1", "--out", str(out),
                                       *cli_options(options)])
    assert result.exit_code == 0, result.output
    exported = pd.read_csv(out)
    expected = pd.read_parquet(local / "assignments")
    expected = expected[expected["cluster"] == 1]
    assert len(exported) == len(expected) > 0
    assert sorted(exported["track_id"]) == sorted(expected["track_id"])
    merged = exported.merge(expected, on="track_id", suffixes=("", "_pandas"))
    np.testing.assert_allclose(merged["pc1"], merged["pc1_pandas"], rtol=1e-6)


@pytest.mark.slow
def test_the_summary_page_of_an_s3_run_names_its_url(runs, options):
    remote, _ = runs
    result = CliRunner().invoke(main, ["export", remote, "--summary", *cli_options(options)])
    assert result.exit_code == 0, result.output
    assert "# Run one" in result.output and f"In `{remote}`" in result.output


@pytest.mark.slow
def test_similar_over_an_s3_run_is_the_numpy_brute_force(runs, options):
    remote, local = runs
    query = pd.read_parquet(local / "query")
    features = [c for c in query.columns if c != "track_id"]
    track = str(query["track_id"].iloc[123])
    result = CliRunner().invoke(main, ["similar", remote, "--track", track, "-n", "8",
                                       "--format", "json", *cli_options(options)])
    assert result.exit_code == 0, result.output
    found = json.loads(result.stdout)["tracks"]

    z = query[features].to_numpy(np.float64)
    q = z[query["track_id"] == track][0]
    cosine = z @ q / (np.linalg.norm(z, axis=1) * np.linalg.norm(q))
    brute = pd.DataFrame({"track_id": query["track_id"], "similarity": cosine})
    brute = brute[brute["track_id"] != track].sort_values(
        ["similarity", "track_id"], ascending=[False, True]).head(8)
    assert [t["track_id"] for t in found] == brute["track_id"].tolist()
    np.testing.assert_allclose([t["similarity"] for t in found], brute["similarity"],
                               rtol=1e-6)


@pytest.mark.slow
def test_the_explorer_loads_an_s3_run_as_the_local_one(runs, options):
    from sonicatlas.app.data import read_run

    remote, local = runs
    on_s3, here = read_run(remote, options), read_run(str(local))
    columns = ["track_id", "cluster", "pc1", "pc2", *here.features]
    pd.testing.assert_frame_equal(
        on_s3.tracks[columns].sort_values("track_id", ignore_index=True),
        here.tracks[columns].sort_values("track_id", ignore_index=True))


@pytest.mark.slow
def test_a_failed_run_leaves_nothing_on_s3(tmp_path, options, s3):
    catalog = write_catalog(blob_tracks(500, seed=6), tmp_path / "catalog", parts=2)
    for part in sorted(catalog.iterdir()):
        s3.put_file(str(part), f"{BUCKET}/broken/{part.name}")
    s3.pipe_file(f"{BUCKET}/broken/part.9.parquet", b"not parquet at all")
    from sonicatlas.errors import CorruptFileError

    with pytest.raises(CorruptFileError, match="part.9.parquet"):
        run_job(f"s3://{BUCKET}/failed/run", f"input=s3://{BUCKET}/broken", "k=2",
                f"storage_options={json.dumps(options)}")
    s3.invalidate_cache()
    assert s3.find(f"{BUCKET}/failed") == []


@pytest.mark.slow
def test_a_run_on_s3_removes_partial_runs_of_gone_clients_and_names_another_hosts(
        tmp_path, options, s3):
    from sonicatlas.runs.partials import OWNER_FILE, owner_record

    gone = subprocess.Popen(["sleep", "60"])
    dead_owner = owner_record(gone.pid)
    gone.kill()
    gone.wait()
    dead, other = f"{BUCKET}/beside/.old.partial-0123abcd", f"{BUCKET}/beside/.far.partial-89abcdef"
    s3.pipe_file(f"{dead}/{OWNER_FILE}", json.dumps(dead_owner).encode())
    s3.pipe_file(f"{dead}/assignments/part.0.parquet", b"half written")
    s3.pipe_file(f"{other}/{OWNER_FILE}",
                 json.dumps({**owner_record(), "host": "far.invalid"}).encode())
    catalog = write_catalog(blob_tracks(500, seed=7), tmp_path / "catalog", parts=2)
    finished = subprocess.run(
        [sys.executable, "-m", "sonicatlas.cli", "run", "cluster-tracks", "--out",
         f"s3://{BUCKET}/beside/new", "--set", f"input={catalog}", "--set", "k=2",
         "--set", f"storage_options={json.dumps(options)}", "--set", "cluster.n_workers=1",
         "--set", "cluster.processes=false", "--set", "cluster.dashboard_address=127.0.0.1:0"],
        capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stdout + finished.stderr
    assert (f"Removed 1 partial run(s) of processes that are gone: s3://{dead}"
            in finished.stdout)
    assert f"Left partial run s3://{other} (owned by pid" in finished.stdout
    assert "far.invalid" in finished.stdout
    s3.invalidate_cache()
    assert sorted(s3.ls(f"{BUCKET}/beside", detail=False)) == [other, f"{BUCKET}/beside/new"]
    assert s3.exists(f"{BUCKET}/beside/new/manifest.json")


@pytest.mark.parametrize("args", [
    ["export", "s3://no-such-bucket/run", "--out", "x.csv"],
    ["export", "s3://no-such-bucket/run", "--summary"],
    ["similar", "s3://no-such-bucket/run", "--track", "x"],
    ["search", "s3://no-such-bucket/run", "song"],
    ["serve", "s3://no-such-bucket/run"],
    ["run", "cluster-tracks", "--out", "s3://no-such-bucket/run"],
])
def test_a_bucket_that_does_not_exist_is_one_line_naming_it_and_exit_2(options, args, s3):
    if args[0] == "run":
        command = [*args, "--set", f"storage_options={json.dumps(options)}"]
    else:
        command = [*args, *cli_options(options)]
    done = CliRunner().invoke(main, command)
    assert done.exit_code == 2, done.output
    error = done.stderr.strip()
    assert error.count("\n") == 0 and "no-such-bucket" in error and not done.stdout, error
    assert not s3.exists("no-such-bucket")  # and no bucket was made from the typo


def test_an_export_to_a_url_is_refused_in_one_line(options, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # where "s3:/atlas/x.csv" would have been made as a folder
    done = CliRunner().invoke(main, ["export", f"s3://{BUCKET}/runs/one", "--out",
                                     f"s3://{BUCKET}/x.csv", *cli_options(options)])
    assert done.exit_code == 2 and done.stderr.count("\n") == 1, done.output
    assert "on this machine" in done.stderr and not (tmp_path / "s3:").exists()


def test_a_run_read_without_credentials_is_one_line_and_exit_2(options, tmp_path):
    run = f"s3://{BUCKET}/runs/one"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"),
               AWS_CONFIG_FILE=str(tmp_path / "none"), AWS_EC2_METADATA_DISABLED="true")
    done = subprocess.run([sys.executable, "-m", "sonicatlas.cli", "export", run,
                           "--summary", "--storage-option",
                           f"endpoint_url={options['endpoint_url']}"],
                          capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 2, done.stdout + done.stderr
    error = done.stderr.strip()
    assert error.count("\n") == 0 and run in error and "credentials" in error, error


@pytest.mark.slow
@pytest.mark.parametrize("args", [
    ["search", "{run}", "song 1", "-n", "5"],
    ["playlist", "{run}", "--cluster", "0", "--size", "6"],
    ["artist", "{run}", "artist 1"],
])
def test_the_discovery_commands_answer_over_s3_as_over_the_local_run(runs, options, args):
    remote, local = runs
    answers = []
    for run, extra in ((remote, cli_options(options)), (str(local), [])):
        result = CliRunner().invoke(main, [a.format(run=run) for a in args]
                                    + ["--format", "json", *extra])
        assert result.exit_code == 0, result.output
        answers.append(json.loads(result.stdout))
    assert answers[0] == answers[1]
    assert any(isinstance(v, list) and v for v in answers[0].values())  # not empty


@pytest.mark.slow
def test_assign_reads_the_run_and_catalog_on_s3_and_writes_there(runs, options, s3):
    from distributed import LocalCluster

    remote, local = runs
    out = f"s3://{BUCKET}/assigned"
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=True,
                      dashboard_address="127.0.0.1:0") as cluster:
        result = CliRunner().invoke(main, ["assign", remote, "--input",
                                           f"s3://{BUCKET}/catalog", "--out", out,
                                           "--scheduler", cluster.scheduler_address,
                                           "--format", "json", *cli_options(options)])
    assert result.exit_code == 0, result.output
    got = pd.read_parquet(f"{out}/assignments", storage_options=options).set_index("track_id")
    job = pd.read_parquet(local / "assignments").set_index("track_id")
    assert len(got) == len(job)
    assert (got.loc[job.index, "cluster"] == job["cluster"]).all()
    assert json.loads(s3.cat_file(f"{BUCKET}/assigned/manifest.json"))["run"] == remote


@pytest.mark.slow
def test_a_segment_listeners_run_on_s3_has_its_report_and_the_local_runs_segments(
        runs, options, s3, tmp_path):
    from jobs.segment_listeners import Config, run
    from sonicatlas.config import load_config

    remote, local = runs
    rng = np.random.default_rng(3)
    tracks = pd.read_parquet(local / "assignments")
    # each user keeps to one cluster's tracks, so that there are segments to find
    users = rng.integers(0, 300, 12_000)
    pools = [tracks.loc[tracks["cluster"] == c, "track_id"].to_numpy() for c in range(3)]
    log = pd.DataFrame({
        "user_id": [f"u{u:03d}" for u in users],
        "track_id": [rng.choice(pools[u % 3]) for u in users],
        "ts": pd.Timestamp("2024-01-01", tz="UTC") + pd.to_timedelta(
            rng.integers(0, 30 * 86_400, len(users)), unit="s"),
        "ms_played": rng.integers(30_000, 300_000, len(users))})
    write_catalog(log, tmp_path / "listens", parts=2)
    for part in sorted((tmp_path / "listens").iterdir()):
        s3.put_file(str(part), f"{BUCKET}/log/listens/{part.name}")
    out = f"s3://{BUCKET}/runs/segments"
    for listens, tracks_run, target, extra in (
            (f"s3://{BUCKET}/log/listens", remote, out,
             [*PROCESSES, f"storage_options={json.dumps(options)}"]),
            (str(tmp_path / "listens"), str(local), str(tmp_path / "segments"), [])):
        config = load_config(Config, None, [*extra, f"listens={listens}",
                                            f"tracks_run={tracks_run}", "k=3"])
        run(config, out=target, echo=lambda *_: None)

    on_s3 = _read(out, "assignments", options)
    here = _read(tmp_path / "segments", "assignments", options)
    pd.testing.assert_frame_equal(on_s3, here)
    page = s3.cat_file(f"{BUCKET}/runs/segments/report.html").decode("utf-8")
    assert "segment-listeners report" in page and "data:image/png;base64," in page
