"""The notebook ``examples/tour.ipynb`` runs from top to bottom (with tiny training budgets:
``TOYFORMER_TOUR_QUICK=1``) in a Jupyter kernel, and every code cell shows something, the figures
included."""

import base64
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "examples" / "tour.ipynb"


def test_committed_notebook_is_small_and_has_its_figures():
    nbformat = pytest.importorskip("nbformat")
    assert NOTEBOOK.stat().st_size < 1_000_000
    nb = nbformat.read(NOTEBOOK, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code" and cell.outputs:  # committed with outputs: one full execution, no error
            assert not [o for o in cell.outputs if o.output_type == "error"], cell.source


@pytest.mark.slow
def test_tour_notebook_runs_and_shows_figures(tmp_path, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    monkeypatch.setenv("TOYFORMER_TOUR_QUICK", "1")  # the kernel inherits this environment
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
    # the kernel is ipykernel's own "python3": this interpreter, so this venv and its toyformer
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()

    code_cells = [c for c in nb.cells if c.cell_type == "code"]
    errors = [o for c in code_cells for o in c.outputs if o.output_type == "error"]
    assert not errors, errors
    assert all(c.outputs for c in code_cells), [c.source[:60] for c in code_cells if not c.outputs]
    images = [o["data"]["image/png"] for c in code_cells for o in c.outputs
              if o.output_type in ("display_data", "execute_result") and "image/png" in o.get("data", {})]
    # live curves, the failed run's curves, the attention grid, the embeddings
    assert len(images) >= 4
    assert all(base64.b64decode(png)[:8] == b"\x89PNG\r\n\x1a\n" for png in images)
    text = "".join(o.get("text", "") for c in code_cells for o in c.outputs)
    assert "quick mode" in text and "mean" in text and "report.html" in text
    assert (tmp_path / "runs" / "tour" / "count" / "report.html").is_file()
