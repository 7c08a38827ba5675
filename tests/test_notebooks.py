"""The notebooks in notebooks/: stored without outputs, and they run top to bottom on a run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import blob_tracks, run_job, write_catalog

CHROMIUM = Path("/usr/bin/chromium")

#: Bokeh charts each notebook draws: 01 the sizes, z-scores and silhouette; 02 two maps.
CHARTS = {"01_explore_run.ipynb": 3, "02_cluster_map.ipynb": 2}
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


@pytest.fixture(scope="module")
def executed(small_run):
    """Each notebook run once; each way of choosing the run is exercised once."""
    done = {}
    with pytest.MonkeyPatch.context() as patch:
        for path in NOTEBOOKS:
            if path.name == "01_explore_run.ipynb":
                patch.setenv("SONICATLAS_RUN", str(small_run))  # the kernel inherits it
                done[path.name] = _execute(path, None)
            else:
                patch.delenv("SONICATLAS_RUN", raising=False)
                done[path.name] = _execute(path, str(small_run))
    return done


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=NAMES)
def test_notebook_runs_top_to_bottom(path, small_run, executed):
    code = [c for c in executed[path.name].cells if c.cell_type == "code"]
    assert all(c.execution_count is not None for c in code)
    outputs = [o for c in code for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    text = json.dumps([o for o in outputs if o.output_type == "stream"])
    assert str(small_run) in text  # it looked at the run it was given
    assert "PC1 (" in text and "PC2 (" in text  # the map's axes, named by their loadings
    # the file on disk is untouched
    assert all(not c["outputs"] for c in json.loads(path.read_text())["cells"]
               if c["cell_type"] == "code")


def html_export(notebook) -> str:
    """The executed notebook as nbconvert's HTML, without its MathJax and require.js links
    (the notebooks use neither; an air-gapped cluster's users export the same way)."""
    nbconvert = pytest.importorskip("nbconvert")
    exporter = nbconvert.HTMLExporter(mathjax_url="", require_js_url="")
    return exporter.from_notebook_node(notebook)[0]


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=NAMES)
def test_executed_notebook_renders_its_charts_with_no_external_request(path, executed,
                                                                      tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright not installed")
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not installed (apt-get install chromium)")
    page_file = tmp_path / f"{path.stem}.html"
    page_file.write_text(html_export(executed[path.name]), encoding="utf-8")
    outside, errors = [], []
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update"])
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("request", lambda r: r.url.startswith(("file:", "data:", "blob:"))
                    or outside.append(r.url))
            page.goto(page_file.as_uri())
            page.wait_for_function("() => window.Bokeh && Bokeh.documents.length > 0",
                                   timeout=30_000)
            page.wait_for_timeout(1000)
            canvases = page.locator(".bk-Canvas").count()
        finally:
            browser.close()
    assert outside == [] and errors == []
    # BokehJS came from the page itself and drew every chart
    assert canvases >= CHARTS.get(path.name, 1)
