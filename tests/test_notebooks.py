"""The notebooks run end to end against a tiny checkpoint, and stay paired with their .ipynb.

Each notebook is executed in a fresh Jupyter kernel (nbclient) with
``COMP_NOTEBOOK_FAST=1`` (tiny samples) and ``COMP_NOTEBOOK_CKPT`` pointing at a run
trained during the test session, so a notebook that no longer runs fails CI.
"""

from __future__ import annotations

import os
from pathlib import Path

import jupytext
import nbformat
import pytest
from nbclient import NotebookClient

import comp

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.py"))


def test_there_are_at_least_three_notebooks():
    assert len(NOTEBOOKS) >= 3


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_paired_with_its_ipynb(path):
    """The .ipynb holds exactly the cells of the jupytext .py (run `jupytext --sync notebooks/*.py`)."""
    text = jupytext.read(path)
    ipynb = nbformat.read(path.with_suffix(".ipynb"), as_version=4)
    assert [(c.cell_type, c.source) for c in ipynb.cells] == [(c.cell_type, c.source) for c in text.cells]
    assert all(not c.get("outputs") for c in ipynb.cells), "commit notebooks without outputs"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs(path, trained_run, tmp_path, monkeypatch):
    src = str(Path(comp.__file__).resolve().parents[1])  # the kernel imports this comp
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in (src, os.environ.get("PYTHONPATH", "")) if p))
    monkeypatch.setenv("COMP_NOTEBOOK_CKPT", str(trained_run))
    monkeypatch.setenv("COMP_NOTEBOOK_FAST", "1")
    monkeypatch.setenv("COMP_NOTEBOOK_THREADS", "1")
    notebook = nbformat.read(path.with_suffix(".ipynb"), as_version=4)
    client = NotebookClient(notebook, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    errors = [o for c in notebook.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
