"""The command line: help that explains, jobs discovered by entry point, clear refusals."""

from click.testing import CliRunner

from sonicatlas.cli import main


def invoke(*args):
    return CliRunner().invoke(main, list(args))


def test_help_lists_commands_and_examples():
    result = invoke("--help")
    assert result.exit_code == 0
    for word in ("run", "generate", "ingest", "jobs", "--scheduler"):
        assert word in result.output
    run_help = invoke("run", "--help").output
    assert "--set" in run_help and "--overwrite" in run_help and "moved into place" in run_help


def test_jobs_are_found_by_entry_point():
    result = invoke("jobs")
    assert result.exit_code == 0 and "cluster-tracks" in result.output


def test_unknown_job_and_bad_override_are_refused_with_exit_code_2(tmp_path):
    result = invoke("run", "no-such-job")
    assert result.exit_code == 2 and "cluster-tracks" in result.output
    result = invoke("run", "cluster-tracks", "--set", "k=zero", "--out", str(tmp_path / "r"))
    assert result.exit_code == 2 and "k:" in result.output
    assert not (tmp_path / "r").exists()
