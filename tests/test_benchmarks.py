"""The benchmark suite runs end to end in --quick mode and reports every row (no timings checked)."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
ROWS = ["throughput", "seeds", "solve", "memory", "patching", "decode"]


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
        if row["bench"] not in ("solve", "memory"):
            assert row["comp"] > 0 and row["baseline"] > 0 and row["ratio"] > 0
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
    assert select([], ["solve"]) == ["throughput", "seeds", "patching", "decode"]
    with pytest.raises(SystemExit, match="unknown benchmark"):
        select(["nope"], [])
