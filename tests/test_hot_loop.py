"""The training hot loop never waits for the device: host reads happen on log steps only.

On the CPU nothing is asynchronous, so the test counts the calls that would block on a
GPU (``Tensor.item``, ``tolist``, ``bool``, ``int``, ``float`` of a tensor) step by step,
using ``should_stop`` (polled once per step) as the step boundary. AdamW's own
``step.item()`` is not counted: its step counters live on the CPU on every device.
"""

from __future__ import annotations

import sys

import pytest
import torch

from comp.train import train
from comp.train.multiseed import train_seeds

READS = ["item", "tolist", "__bool__", "__int__", "__float__"]


@pytest.fixture
def reads(monkeypatch) -> list[str]:
    """Every host read of a tensor outside torch.optim, as ``file:line``."""
    seen: list[str] = []
    for name in READS:
        original = getattr(torch.Tensor, name)

        def counted(self, *args, _original=original, **kwargs):
            caller = sys._getframe(1).f_code.co_filename
            if "torch/optim" not in caller.replace("\\", "/"):
                seen.append(f"{caller}:{sys._getframe(1).f_lineno}")
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, counted)
    return seen


def reads_per_step(run, reads: list[str]) -> dict[int, list[str]]:
    """Host reads made during each step (2..last; step 1 includes setup)."""
    marks: list[int] = []

    def probe() -> bool:
        marks.append(len(reads))
        return False

    run(probe)
    return {k + 1: reads[marks[k - 1] : marks[k]] for k in range(1, len(marks))}


@pytest.mark.parametrize("seeds", [None, [0, 1]])
def test_no_host_reads_between_log_steps(tiny, tmp_path, reads, seeds):
    cfg = tiny(steps=12, log_every=5, eval_every=0, ckpt_every=1000)
    if seeds is None:
        per_step = reads_per_step(lambda stop: train(cfg, tmp_path / "r", quiet=True, should_stop=stop), reads)
    else:
        dirs = [tmp_path / f"r-s{s}" for s in seeds]
        per_step = reads_per_step(lambda stop: train_seeds(cfg, seeds, dirs, quiet=True, should_stop=stop), reads)
    assert sorted(per_step) == list(range(2, 13))
    for step, found in per_step.items():
        if step % 5 == 0 or step == 12:
            assert found, f"log step {step} read nothing: the probe is blind"
        else:
            assert not found, f"step {step} reads the device: {found}"
