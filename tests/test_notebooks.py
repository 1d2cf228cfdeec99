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


# What each notebook must have computed, checked in its own kernel after its last cell
# against the model and the library (a failing assert is an error output).
CHECKS = {
    "01_parity_length_generalization": """
assert [(r["encoding"], r["length"]) for r in rows] == [(pe, n) for pe in encodings for n in eval_lengths]
assert all(r["acc_generate"] == r["acc_cot"] and 0 <= r["acc_answer"] <= 1 for r in rows)  # greedy = teacher-forced
assert all(run_status(r.path) == "finished" and r.config.model.encoding == pe for pe, r in runs.items())
assert len(fig.data) == 3 * len(encodings)  # one line per metric and encoding
""",
    "02_iteration_head": """
from comp.circuits.components import components
from comp.circuits.hypotheses import HYPOTHESES
labels = [c.label for c in components(model, "both")]
assert [r.component for r in heads.rows] == [c for c in labels if "H" in c]
assert top == max(heads.rows, key=lambda r: r.iteration).component
assert [r.component for r in ablation.rows] == labels and ablation.baseline.acc_cot == evaluate(
    model, task, [L], n=n, generate=False)[0]["acc_cot"]
assert [h.hypothesis for h in verdicts.hypotheses] == list(HYPOTHESES)
assert all(h.verdict in ("supported", "refuted", "inconclusive") for h in verdicts.hypotheses)
assert len(patching["head_out"]) == model.cfg.n_layers and len(patching["head_out"][0][0]) == model.cfg.n_heads
assert len(patching["positions"]) == len(patching["resid_pre"][0])
assert (run.path / "attention.html").read_text() == page
assert len(result["rows"]) == len(result["layers"]) * len(result["positions"])
""",
    "03_probes_parity_accumulator": """
assert set(results) == {"s_prev", "x_t", "s_t"}
for target, result in results.items():
    assert result["target"] == target and len(result["rows"]) == len(result["layers"]) * len(result["positions"])
assert [row["layer"] for row in table] == results["s_t"]["layers"]
assert all(0 <= row[t] <= 1 for row in table for t in results)
""",
}


def test_every_notebook_has_a_check():
    assert sorted(CHECKS) == [p.stem for p in NOTEBOOKS]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs(path, trained_run, tmp_path, monkeypatch):
    src = str(Path(comp.__file__).resolve().parents[1])  # the kernel imports this comp
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in (src, os.environ.get("PYTHONPATH", "")) if p))
    monkeypatch.setenv("COMP_NOTEBOOK_CKPT", str(trained_run))
    monkeypatch.setenv("COMP_NOTEBOOK_FAST", "1")
    monkeypatch.setenv("COMP_NOTEBOOK_THREADS", "1")
    notebook = nbformat.read(path.with_suffix(".ipynb"), as_version=4)
    notebook.cells.append(nbformat.v4.new_code_cell(CHECKS[path.stem]))
    client = NotebookClient(notebook, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    errors = [o for c in notebook.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors, [f"{e['ename']}: {e['evalue']}" for e in errors]
