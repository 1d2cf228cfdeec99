"""Training: learning, checkpoints, exact resume (also after SIGKILL), determinism."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch

from comp.config import TrainConfig
from comp.evaluation import masked_loss
from comp.io import load_tensors
from comp.model import ModelConfig, build_model
from comp.runs.load import load_run, resume_config
from comp.tasks import make_task
from comp.train import train
from comp.train.loop import make_optimizer
from comp.train.schedule import lr_at


def weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return load_tensors(run_dir / "model.safetensors")


def assert_same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_tiny_model_overfits_a_fixed_batch():
    torch.manual_seed(0)
    model = build_model(ModelConfig(d_model=32, n_heads=2, n_ctx=64), seed=0)
    batch = make_task("parity").sample(torch.Generator().manual_seed(0), "1-6", 16)
    opt = make_optimizer(model, TrainConfig(lr=3e-3))
    first = None
    for _ in range(150):
        loss = masked_loss(model(batch.tokens), batch)
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert first > 0.5 and loss.item() < 0.02


def test_schedule_warmup_then_cosine_floor():
    cfg = TrainConfig(lr=1e-3, warmup_steps=10, steps=110, min_lr_ratio=0.1)
    assert lr_at(0, cfg) == 1e-4 and lr_at(9, cfg) == 1e-3
    assert abs(lr_at(60, cfg) - 0.55e-3) < 1e-9 and abs(lr_at(110, cfg) - 1e-4) < 1e-12
    assert lr_at(50, TrainConfig(lr=1e-3, warmup_steps=10, schedule="constant")) == 1e-3


def test_run_directory_contents_and_save_load_logits(tiny, tmp_path):
    result = train(tiny(), tmp_path / "r", quiet=True)
    run_dir = result.run_dir
    for f in ["config.json", "model.safetensors", "training_state.safetensors", "metrics.jsonl", "eval.json"]:
        assert (run_dir / f).exists(), f
    cfg = json.loads((run_dir / "config.json").read_text())
    assert cfg["format"] == "comp-run/1" and cfg["meta"]["torch"] == torch.__version__ and "git_commit" in cfg["meta"]
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if "loss" in r] == [10, 20, 30, 40]
    assert json.loads((run_dir / "eval.json").read_text())["rows"][0]["length"] == 1
    # reload: identical logits
    loaded = load_run(run_dir)
    tokens = make_task("parity").sample(torch.Generator().manual_seed(9), "1-4", 8).tokens
    fresh = build_model(loaded.config.model)
    fresh.load_state_dict({k: v for k, v in weights(run_dir).items()}, strict=False)
    with torch.no_grad():
        assert torch.equal(loaded.model(tokens), fresh.eval()(tokens))


def test_same_seed_same_weights_other_seed_differs(tiny, tmp_path, default_threads):
    """At the default thread count, with batches big enough for PyTorch's parallel kernels."""
    opts = dict(threads=default_threads, batch_size=128, steps=8)
    a = train(tiny(**opts), tmp_path / "a", quiet=True).run_dir
    b = train(tiny(**opts), tmp_path / "b", quiet=True).run_dir
    c = train(tiny(seed=1, **opts), tmp_path / "c", quiet=True).run_dir
    assert_same(weights(a), weights(b))
    assert not torch.equal(weights(a)["embed.W_E"], weights(c)["embed.W_E"])


def test_resume_equals_uninterrupted(tiny, tmp_path):
    full = train(tiny(), tmp_path / "full", quiet=True).run_dir
    calls = {"n": 0}

    def stop_at_17():
        calls["n"] += 1
        return calls["n"] == 17

    part = train(tiny(), tmp_path / "part", quiet=True, should_stop=stop_at_17)
    assert part.interrupted and part.state.step == 17
    resumed = train(resume_config(tmp_path / "part"), tmp_path / "part", resume=True, quiet=True)
    assert resumed.state.step == 40
    assert_same(weights(full), weights(tmp_path / "part"))
    steps = [json.loads(x)["step"] for x in (tmp_path / "part" / "metrics.jsonl").read_text().splitlines()]
    assert steps == [json.loads(x)["step"] for x in (full / "metrics.jsonl").read_text().splitlines()]


def test_resume_with_more_steps_continues(tiny, tmp_path):
    train(tiny(steps=20), tmp_path / "r", quiet=True)
    more = train(resume_config(tmp_path / "r", steps=30), tmp_path / "r", resume=True, quiet=True)
    assert more.state.step == 30 and more.state.stop_reason == "steps"


def test_resume_after_sigkill_matches_uninterrupted(tiny, tmp_path, default_threads):
    """Kill the training process mid-run; resuming from its last checkpoint gives the same weights
    (at the default thread count)."""
    cfg = tiny(steps=150, ckpt_every=7, log_every=5, eval_every=50, threads=default_threads)
    full = train(cfg, tmp_path / "full", quiet=True).run_dir
    config_file = tmp_path / "cfg.json"
    config_file.write_text(json.dumps({k: v for k, v in cfg.to_dict().items() if k != "task"}))
    run_dir = tmp_path / "killed"
    cmd = [sys.executable, "-m", "comp", "train", "parity", "--config", str(config_file), "--quiet",
           "--name", "killed", "--out", str(tmp_path)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={**os.environ})
    state = run_dir / "training_state.safetensors"
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if state.exists() and (run_dir / "metrics.jsonl").exists():
            steps = [json.loads(x)["step"] for x in (run_dir / "metrics.jsonl").read_text().splitlines() if x.strip()]
            if steps and max(steps) >= 40:
                break
        time.sleep(0.05)
    assert proc.poll() is None, proc.stderr.read().decode()
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (run_dir / "model.safetensors").exists()  # it really died mid-run
    resumed = train(resume_config(run_dir), run_dir, resume=True, quiet=True)
    assert resumed.state.step == 150
    assert_same(weights(full), weights(run_dir))
