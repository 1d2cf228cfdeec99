"""Shared fixtures: a private runs directory and tiny, fast configurations."""

from __future__ import annotations

import pytest
import torch

from comp.config import RunConfig, TaskConfig, TrainConfig
from comp.model import ModelConfig

torch.set_num_threads(1)
DEFAULT_THREADS = 2  # comp's default on the 2-core machines it targets: exactness tests run here


@pytest.fixture
def default_threads():
    """Run a test at the default thread count (multi-threaded kernels), then back to one thread."""
    torch.set_num_threads(DEFAULT_THREADS)
    yield DEFAULT_THREADS
    torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    """Every test gets its own runs directory and never touches the network."""
    monkeypatch.setenv("COMP_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("COLUMNS", "200")  # help text unwrapped, so "(default: X)" is on one line


def tiny_config(**train) -> RunConfig:
    """A 2-layer width-32 model on parity 1-4: trains in a second or two."""
    defaults = dict(steps=40, batch_size=32, train_lengths="1-4", eval_every=20, eval_n=32, final_eval_n=32,
                    ckpt_every=10, log_every=10, warmup_steps=5, threads=1, target_acc=0.0)
    defaults.update(train)
    return RunConfig(
        task=TaskConfig(name="parity"),
        model=ModelConfig(n_layers=2, n_heads=2, d_model=32, n_ctx=64, encoding="rotary"),
        train=TrainConfig(**defaults),
    )


@pytest.fixture
def tiny():
    return tiny_config


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory):
    """The directory of a tiny parity run (lengths 1-4), trained once per test session."""
    from comp.train import train

    path = tmp_path_factory.mktemp("trained") / "parity-tiny"
    train(tiny_config(steps=60), path, quiet=True)
    return path


def stop_at(n: int):
    """A ``should_stop`` for ``train``: true at its ``n``-th call (an interruption after step ``n``)."""
    calls = {"n": 0}

    def should_stop() -> bool:
        calls["n"] += 1
        return calls["n"] == n

    return should_stop
