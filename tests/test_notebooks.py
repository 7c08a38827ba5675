"""The notebooks in notebooks/: stored without outputs, and they run top to bottom on a run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import blob_tracks, run_job, write_catalog

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))
NAMES = [p.name for p in NOTEBOOKS]


def test_both_notebooks_exist():
    assert {"01_explore_run.ipynb", "02_cluster_map.ipynb"} <= set(NAMES)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=NAMES)
def test_stored_without_outputs_and_with_a_parameters_cell(path):
    # Plain JSON, so this runs where nbformat is not installed.
    notebook = json.loads(path.read_text(encoding="utf-8"))
    code = [c for c in notebook["cells"] if c["cell_type"] == "code"]
    for cell in code:
        assert cell["outputs"] == [] and cell["execution_count"] is None, cell["source"]
    assert "parameters" in code[0].get("metadata", {}).get("tags", [])
    assert "run_dir" in "".join(code[0]["source"])


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    root = tmp_path_factory.mktemp("notebooks")
    frame = blob_tracks(2_000, groups=3, seed=5)
    frame.loc[:2, "tempo"] = float("nan")  # so the rejects section has rows to show
    run_job(root / "run", f"input={write_catalog(frame, root / 'catalog')}", "k=3")
    return root / "run"


def _execute(path: Path, inject: str | None):
    nbformat = pytest.importorskip("nbformat")
    from nbclient import NotebookClient

    notebook = nbformat.read(path, as_version=4)
    if inject is not None:  # what papermill does with -p run_dir ...
        params = next(c for c in notebook.cells if "parameters" in c.metadata.get("tags", []))
        params.source = f"run_dir = {inject!r}"
    # Raises CellExecutionError, with the cell and traceback, if any cell fails.
    NotebookClient(notebook, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    return notebook


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=NAMES)
def test_notebook_runs_top_to_bottom(path, small_run, monkeypatch):
    # Each way of choosing the run is exercised once; a kernel start costs seconds.
    if path.name == "01_explore_run.ipynb":
        monkeypatch.setenv("SONICATLAS_RUN", str(small_run))  # the kernel inherits it
        executed = _execute(path, None)
    else:
        monkeypatch.delenv("SONICATLAS_RUN", raising=False)
        executed = _execute(path, str(small_run))
    code = [c for c in executed.cells if c.cell_type == "code"]
    assert all(c.execution_count is not None for c in code)
    outputs = [o for c in code for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    text = json.dumps([o for o in outputs if o.output_type == "stream"])
    assert str(small_run) in text  # it looked at the run it was given
    # the file on disk is untouched
    assert all(not c["outputs"] for c in json.loads(path.read_text())["cells"]
               if c["cell_type"] == "code")
