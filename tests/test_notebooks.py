"""Both notebooks execute top to bottom at a tiny size."""
import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", ["01_walkthrough.ipynb", "02_figures.ipynb"])
def test_notebook_runs(tmp_path, monkeypatch, name):
    monkeypatch.setenv("LIT_STBIAS_TINY", "1")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    book = nbformat.read(ROOT / "notebooks" / name, as_version=4)
    NotebookClient(book, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [o for cell in book.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    assert any(o.output_type == "display_data" or o.output_type == "execute_result" for o in outputs)
    produced = list((tmp_path / "outputs").rglob("*.png"))
    assert produced, "the notebook writes its figures"
