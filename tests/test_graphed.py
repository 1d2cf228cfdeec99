"""The whole-step compiled training path (comp.train.graphed), run on a CPU with dynamo's
graph capture and no code generation (the ``eager`` backend: a GPU uses inductor and CUDA
graphs): the eager padded step's losses and weights, no host reads inside the step, and
the training loop's ``compile_step`` flag."""

from __future__ import annotations

import json
import sys

import pytest
import torch

from comp.io import read_metadata
from comp.model import build_model
from comp.runs.files import STATE_FILE
from comp.train import graphed, train
from comp.train.buckets import forward_backward
from comp.train.graphed import CompiledStep
from comp.train.loop import make_optimizer
from comp.train.schedule import lr_at

STEPS = 4
BACKEND = "eager"  # dynamo graph capture without code generation: seconds on a CPU


def eager_losses(cfg, task):
    """The eager loop's padded step: one forward, clip, AdamW with a float learning rate."""
    model = build_model(cfg.model, seed=0).train()
    opt = make_optimizer(model, cfg.train)
    gen, losses = torch.Generator().manual_seed(3), []
    for i in range(STEPS):
        for group in opt.param_groups:
            group["lr"] = lr_at(i, cfg.train)
        batch = task.sample(gen, cfg.train.lengths, cfg.train.batch_size)
        opt.zero_grad(set_to_none=True)
        losses.append(forward_backward(model, model, batch, 1))
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.train.grad_clip)
        opt.step()
    return torch.stack(losses), model


def test_compiled_step_gives_the_eager_losses_and_weights_without_host_reads(tiny, monkeypatch):
    cfg = tiny(warmup_steps=2, grad_clip=0.5)
    task = cfg.validate()
    torch._dynamo.reset()
    model = build_model(cfg.model, seed=0).train()
    step = CompiledStep(model, make_optimizer(model, cfg.train), cfg.train.grad_clip, amp=False,
                        device=torch.device("cpu"), backend=BACKEND)
    gen = torch.Generator().manual_seed(3)
    batches = [task.sample(gen, cfg.train.lengths, cfg.train.batch_size) for _ in range(STEPS)]
    losses = [step(batches[i], lr_at(i, cfg.train)) for i in range(STEPS - 1)]  # the first one compiles
    reads = []
    for name in ("item", "tolist", "__bool__", "__float__", "__int__"):  # what would wait for a GPU
        original = getattr(torch.Tensor, name)

        def counted(self, *args, _original=original, **kwargs):
            caller = sys._getframe(1).f_code.co_filename.replace("\\", "/")
            # not counted: AdamW's step counters (on the device with CUDA: fused) and dynamo's guards
            # (generated code, "<string>", that checks a CPU scalar; GPU syncs: benchmarks.syncs)
            if "torch/optim" not in caller and caller != "<string>":
                reads.append(caller)
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, counted)
    losses.append(step(batches[-1], lr_at(STEPS - 1, cfg.train)))
    monkeypatch.undo()
    assert reads == []
    want, eager = eager_losses(cfg, task)
    assert not torch.equal(losses[0], losses[-1])  # it trained: losses move
    torch.testing.assert_close(torch.stack(losses), want, atol=1e-5, rtol=1e-5)
    for (name, p), q in zip(model.named_parameters(), eager.parameters()):
        torch.testing.assert_close(p, q, atol=1e-5, rtol=1e-4, msg=name)
    assert torch.is_tensor(step.opt.param_groups[0]["lr"])  # lr is an input of the graph, not a constant


def test_the_loop_takes_the_compiled_step_with_its_flag(tiny, tmp_path, monkeypatch):
    calls = []
    original = graphed.CompiledStep.__call__
    monkeypatch.setattr(graphed.CompiledStep, "__call__", lambda self, *a: calls.append(1) or original(self, *a))
    monkeypatch.setattr(graphed.torch, "compile", lambda fn, **kwargs: fn)  # the wiring only: compiled above
    monkeypatch.setattr(graphed, "DEVICES", ("cuda", "cpu"))  # a CPU stands in for the GPU
    cfg = tiny(steps=6, eval_every=3, ckpt_every=3, log_every=3, compile_step=True)
    result = train(cfg, tmp_path / "r", quiet=True)
    assert len(calls) == 6 and result.state.step == 6  # every step was the compiled one
    rows = [json.loads(x) for x in (result.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if "loss" in r] == [3, 6] and all(r["loss"] > 0 for r in rows if "loss" in r)
    groups = json.loads(read_metadata(result.run_dir / STATE_FILE)["param_groups"])
    assert groups[0]["lr"] == pytest.approx(lr_at(5, cfg.train))  # the checkpoint holds the tensor lr as a number


def test_compile_step_is_for_gpus(tiny, tmp_path, monkeypatch):
    built = []
    monkeypatch.setattr(graphed.CompiledStep, "__init__", lambda self, *a: built.append(1))
    result = train(tiny(steps=4, compile_step=True), tmp_path / "r", quiet=True)
    assert built == [] and result.state.step == 4  # on a CPU the flag is ignored, like compile
