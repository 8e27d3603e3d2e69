"""Both notebooks execute top to bottom at a tiny size, as a plain Jupyter runs them: from the notebooks folder,
with lit_stbias importable (as an installed package is) and nothing else of the repository."""
import shutil
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", ["01_walkthrough.ipynb", "02_figures.ipynb"])
def test_notebook_runs(tmp_path, monkeypatch, name):
    notebooks = tmp_path / "notebooks"
    shutil.copytree(ROOT / "notebooks", notebooks, ignore=shutil.ignore_patterns("outputs", ".ipynb_checkpoints"))
    installed = tmp_path / "site"  # the package alone, as pip installs it: no analyze.py, no tests/
    installed.mkdir()
    (installed / "lit_stbias").symlink_to(ROOT / "lit_stbias")
    monkeypatch.setenv("LIT_STBIAS_TINY", "1")
    monkeypatch.setenv("PYTHONPATH", str(installed))
    book = nbformat.read(notebooks / name, as_version=4)
    NotebookClient(book, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(notebooks)}}).execute()
    outputs = [o for cell in book.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    assert any(o.output_type == "display_data" or o.output_type == "execute_result" for o in outputs)
    produced = list((notebooks / "outputs").rglob("*.png"))
    assert produced, "the notebook writes its figures next to itself"
