"""The benchmark suite runs end to end in --quick mode and reports every row (no timings checked)."""

from __future__ import annotations

import json
import subprocess
import sys
import types
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
ROWS = ["throughput", "paper", "kernels", "packing", "packing", "seeds", "seeds-max", "solve", "memory", "patching_resid_pre",
        "patching_head_out", "patching_mlp_out", "edge_patching", "discovery_nodes", "discovery_edges",
        "discovery_shortcuts", "startup", "startup-error", "dynamics", "decode", "evaluate"]


@pytest.fixture(autouse=True)
def _importable(monkeypatch):
    monkeypatch.syspath_prepend(str(REPO))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the child process of the solve benchmark


def test_quick_suite_prints_every_row_and_writes_json(tmp_path, capsys):
    from benchmarks.__main__ import main

    out = tmp_path / "bench.json"
    assert main(["--device", "cpu", "--quick", "--json", str(out)]) == 0
    table = capsys.readouterr().out
    data = json.loads(out.read_text())
    assert [r["bench"] for r in data["rows"]] == ROWS
    for row in data["rows"]:
        assert row["bench"] in table
        if row["bench"] not in ("solve", "memory", "discovery_nodes", "discovery_edges"):
            assert row["comp"] > 0 and row["baseline"] > 0 and row["ratio"] > 0
        if row["bench"] in ("discovery_nodes", "discovery_edges"):
            assert row["comp"] > 0 and row["extra"]["kept"] <= row["extra"]["total"]
    assert data["machine"]["torch"] and data["command"].startswith("python -m benchmarks")


def test_patching_benchmark_is_picked_up_and_failures_become_rows(monkeypatch):
    from benchmarks import Options, Row, suite

    fake = types.ModuleType("benchmarks.patching")
    fake.bench = lambda opts: [Row("patching", "batched / TransformerLens", comp=1.0, baseline=30.0, ratio=30.0)]
    monkeypatch.setitem(sys.modules, "benchmarks.patching", fake)
    monkeypatch.setitem(suite.BENCHMARKS, "seeds", lambda opts: 1 / 0)
    rows = suite.run(Options(quick=True), ["seeds", "patching"])
    assert [r.bench for r in rows] == ["seeds", "patching"]
    assert rows[0].measure == "failed" and "ZeroDivisionError" in rows[0].note
    assert rows[1].ratio == 30.0


def test_only_and_skip_select_benchmarks():
    from benchmarks.suite import select

    assert select(["seeds", "throughput"], []) == ["throughput", "seeds"]
    assert select([], ["solve"]) == ["throughput", "paper", "kernels", "seeds", "seeds-max", "patching", "discovery",
                                     "startup", "dynamics", "decode", "evaluate"]
    with pytest.raises(SystemExit, match="unknown benchmark"):
        select(["nope"], [])


def test_plain_transformer_is_the_paper_shape_and_learns():
    """The baseline is what it says: 2 pre-LN blocks, 1 head, width 128, causal, and it trains."""
    import torch

    from benchmarks.paper import PlainTransformer
    from comp.tasks import make_task, vocab

    torch.manual_seed(0)
    model = PlainTransformer(vocab.D_VOCAB, 64)
    assert len(model.blocks) == 2 and model.blocks[0].n_heads == 1 and model.embed.embedding_dim == 128
    tokens = make_task("parity").sample(torch.Generator().manual_seed(0), "1-3", 16).tokens
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(30):
        loss = torch.nn.functional.cross_entropy(model(tokens[:, :-1]).flatten(0, 1), tokens[:, 1:].flatten())
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.5  # memorises a fixed batch
    with torch.no_grad():
        torch.testing.assert_close(model(tokens)[:, :3], model(tokens[:, :3]))  # causal: later tokens change nothing


def test_patching_ab_exports_a_revision_as_its_own_package(tmp_path):
    """``python -m benchmarks.patching_ab``: the other revision imports itself, never this checkout's ``comp``."""
    import importlib

    from benchmarks.patching_ab import PACKAGE, compare, export

    if subprocess.run(["git", "-C", str(Path(__file__).resolve().parents[1]), "rev-parse", "HEAD"], capture_output=True).returncode:
        pytest.skip("needs a git checkout of this repository (git archive HEAD)")
    export("HEAD", tmp_path)
    text = (tmp_path / PACKAGE / "circuits" / "patching.py").read_text()
    assert f"from {PACKAGE}.circuits import" in text and "from comp." not in text and "import comp\n" not in text
    sys.path.insert(0, str(tmp_path))
    try:
        other = importlib.import_module(f"{PACKAGE}.circuits.patching")
        assert other.__file__.startswith(str(tmp_path))
        r = compare(other, ["mlp_out"], n=4, rounds=1, reps=1)  # asserts the two versions agree
    finally:
        sys.path.remove(str(tmp_path))
        for name in [m for m in sys.modules if m == PACKAGE or m.startswith(PACKAGE + ".")]:
            del sys.modules[name]
    assert r["mlp_out"]["ratio_best"] > 0
