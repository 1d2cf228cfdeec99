"""Multi-seed training: each seed ends as if trained alone, and writes a single run's files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from comp.errors import CompError
from comp.evaluation import masked_loss
from comp.io import load_tensors
from comp.model import ModelConfig, build_model
from comp.runs.load import resume_config
from comp.runs.names import parse_seeds, seed_run_dir
from comp.tasks import make_task
from comp.train import train
from comp.train.loop import make_optimizer, open_run, quick_eval
from comp.train.multiseed import (
    stack_batches,
    stacked_quick_eval,
    train_seeds,
    with_seed,
)
from comp.train.stack import SeedStack, stacked_logits, stacked_losses

TIMING = {"tokens_per_s", "elapsed"}  # wall-clock fields: the only ones allowed to differ


def dirs(base: Path, seeds) -> list[Path]:
    return [base / f"run-s{s}" for s in seeds]


def assert_same_run(a: Path, b: Path, atol: float = 1e-4, resumed: bool = False) -> None:
    """Two run directories hold the same run: weights, optimizer and RNG state, metrics, evaluation.

    To float tolerance: a single run computes attention with the fused kernel (comp.model.fused),
    stacked seeds with the hook path under ``vmap``, and AdamW turns the rounding of tiny
    gradients (``b_K``) into steps of about ``lr``-size noise, so weights agree to ~1e-5.

    ``resumed``: the logging window that spans an interruption averages fewer steps, so
    only the steps of metrics rows are compared.
    """
    for name in ["model.safetensors", "training_state.safetensors"]:
        ta, tb = load_tensors(a / name), load_tensors(b / name)
        assert ta.keys() == tb.keys(), name
        for k in ta:
            if ta[k].is_floating_point():
                torch.testing.assert_close(ta[k], tb[k], atol=atol, rtol=atol, msg=f"{name}:{k}")
            else:
                assert torch.equal(ta[k], tb[k]), f"{name}:{k}"
    rows = [[json.loads(x) for x in (d / "metrics.jsonl").read_text().splitlines()] for d in (a, b)]
    assert len(rows[0]) == len(rows[1])
    for ra, rb in zip(*rows):
        assert ra.keys() == rb.keys() and ra["step"] == rb["step"]
        for k in ([] if resumed else ra.keys() - TIMING):
            assert ra[k] == pytest.approx(rb[k], abs=atol), k
    ea, eb = (json.loads((d / "eval.json").read_text()) for d in (a, b))
    assert (ea["step"], ea["stop_reason"]) == (eb["step"], eb["stop_reason"])
    for ra, rb in zip(ea["rows"], eb["rows"]):
        assert ra == pytest.approx(rb, abs=atol)


def test_each_seed_ends_as_if_trained_alone_with_early_stopping(tiny, tmp_path):
    """Three seeds reach the target at different steps (10, 15, 20): each finishes then, like alone."""
    cfg = tiny(steps=80, train_lengths="1-2", target_acc=0.99, patience=1, eval_every=5, lr=0.01)
    results = train_seeds(cfg, [0, 1, 2], dirs(tmp_path / "multi", [0, 1, 2]), quiet=True)
    stops = []
    for seed, result in zip([0, 1, 2], results):
        alone = train(tiny(seed=seed, steps=80, train_lengths="1-2", target_acc=0.99, patience=1, eval_every=5,
                           lr=0.01), tmp_path / f"alone-s{seed}", quiet=True)
        assert result.state.step == alone.state.step and result.state.stop_reason == "target"
        assert result.state.history == alone.state.history
        assert_same_run(result.run_dir, alone.run_dir)
        stops.append(result.state.step)
    assert len(set(stops)) > 1  # seeds left the stack at different steps


def test_seeds_equal_alone_exactly_at_the_default_threads(tiny, tmp_path, default_threads):
    """Big enough batches for PyTorch's parallel kernels: each seed is bit-identical to itself alone
    trained on the hook path (``fast_kernels=False``; the fast kernels agree to ~1e-5, see assert_same_run)."""
    opts = dict(steps=6, batch_size=128, eval_every=3, log_every=3, threads=default_threads, fast_kernels=False)
    results = train_seeds(tiny(**opts), [0, 1], dirs(tmp_path / "multi", [0, 1]), quiet=True)
    for seed, result in zip([0, 1], results):
        alone = train(tiny(seed=seed, **opts), tmp_path / f"alone-s{seed}", quiet=True)
        assert_same_run(result.run_dir, alone.run_dir, atol=0)


def test_seeds_trained_together_reproduce_exactly_at_the_default_threads(tiny, tmp_path, default_threads):
    """Big enough batches for PyTorch's parallel kernels: two identical multi-seed runs are bit-identical.
    (Against a seed alone they agree to float tolerance only: on a CPU the single-seed loop sums
    gradients over length buckets, comp.train.buckets, the stack over one padded batch.)"""
    opts = dict(steps=6, batch_size=128, eval_every=3, log_every=3, threads=default_threads)
    a = train_seeds(tiny(**opts), [0, 1], dirs(tmp_path / "a", [0, 1]), quiet=True)
    b = train_seeds(tiny(**opts), [0, 1], dirs(tmp_path / "b", [0, 1]), quiet=True)
    for x, y in zip(a, b):
        assert_same_run(x.run_dir, y.run_dir, atol=0)


def test_curriculum_seeds_match_alone_to_float_tolerance(tiny, tmp_path):
    """Seeds at different curriculum stages are padded to one width: same results to float tolerance."""
    opts = dict(steps=30, train_lengths="1-4", eval_every=5, curriculum=True, curriculum_start=1,
                curriculum_step=1, curriculum_threshold=0.5)
    results = train_seeds(tiny(**opts), [0, 1], dirs(tmp_path, [0, 1]), quiet=True)
    his = []
    for seed, result in zip([0, 1], results):
        alone = train(tiny(seed=seed, **opts), tmp_path / f"alone-s{seed}", quiet=True)
        assert_same_run(result.run_dir, alone.run_dir, atol=1e-4)
        his.append([json.loads(x).get("max_length") for x in (result.run_dir / "metrics.jsonl").read_text().splitlines()])
    assert his[0] != his[1]  # the seeds really were at different lengths


def test_interrupted_group_resumes_together_or_one_seed_alone(tiny, tmp_path):
    cfg = tiny(steps=40, ckpt_every=10)
    full = train_seeds(cfg, [0, 1, 2], dirs(tmp_path / "full", [0, 1, 2]), quiet=True)
    calls = {"n": 0}

    def stop_at_17():
        calls["n"] += 1
        return calls["n"] == 17

    part = train_seeds(cfg, [0, 1, 2], dirs(tmp_path / "part", [0, 1, 2]), quiet=True, should_stop=stop_at_17)
    assert all(r.interrupted and r.state.step == 17 for r in part)
    # seeds 0 and 1 resume as a group, seed 2 with the single-seed loop: its checkpoint is a single run's
    train_seeds(cfg, [0, 1], dirs(tmp_path / "part", [0, 1]), resume=True, quiet=True)
    seed2 = tmp_path / "part" / "run-s2"
    assert train(resume_config(seed2), seed2, resume=True, quiet=True).state.step == 40
    for a, b in zip(full, part):
        assert_same_run(a.run_dir, b.run_dir, resumed=True)


def test_seeds_found_at_different_steps_resume_in_turn(tiny, tmp_path):
    """A kill between two seeds' checkpoints leaves them at different steps: both still finish exactly."""
    cfg = tiny(steps=30, ckpt_every=5)
    for seed, at in [(0, 10), (1, 15)]:
        calls = iter(range(1, 1000))
        train(tiny(seed=seed, steps=30, ckpt_every=5), tmp_path / f"run-s{seed}", quiet=True,
              should_stop=lambda calls=calls, at=at: next(calls) == at)
    results = train_seeds(cfg, [0, 1], dirs(tmp_path, [0, 1]), resume=True, quiet=True)
    assert [r.state.step for r in results] == [30, 30]
    for seed in [0, 1]:
        alone = train(tiny(seed=seed, steps=30, ckpt_every=5), tmp_path / f"alone-s{seed}", quiet=True)
        assert_same_run(tmp_path / f"run-s{seed}", alone.run_dir, resumed=True)


def test_stacked_update_is_clip_grad_norm_then_adamw_per_seed(tiny, tmp_path):
    """Steps of the stack equal torch's clip_grad_norm_ + AdamW on each model (weight decay on)."""
    cfg = tiny(weight_decay=0.1, grad_clip=1.0)
    cpu = torch.device("cpu")
    runs = [open_run(with_seed(cfg, s), d, cpu, resume=False) for s, d in zip([0, 1], dirs(tmp_path, [0, 1]))]
    stack = SeedStack(runs, runs[0].model)
    batches = [make_task("parity").sample(torch.Generator().manual_seed(s), "1-4", 8) for s in [0, 1]]
    tokens, mask = stack_batches(batches)
    scale = torch.tensor([1.0, 1e-3])  # seed 0 is clipped, seed 1 (tiny gradients) is not
    for _ in range(3):
        stack.zero_grad()
        (stack.losses(tokens, mask) * scale).sum().backward()
        stack.clip_grads_(1.0)
        stack.step(0.01)
    for seed, (run, batch) in enumerate(zip(runs, batches)):
        ref = build_model(cfg.model, seed=seed)
        opt = make_optimizer(ref, cfg.train)
        for _ in range(3):
            for g in opt.param_groups:
                g["lr"] = 0.01
            opt.zero_grad()
            (masked_loss(ref(batch.tokens), batch) * scale[seed]).backward()
            norm = torch.nn.utils.clip_grad_norm_(ref.parameters(), 1.0)
            opt.step()
        assert (norm > 1.0) == (seed == 0)
        stack.store(seed, run)
        for (name, p), q in zip(run.model.named_parameters(), ref.parameters()):
            torch.testing.assert_close(p, q, atol=1e-6, rtol=1e-6, msg=name)
        mine, torchs = run.opt.state_dict(), opt.state_dict()
        assert mine["param_groups"] == torchs["param_groups"]
        for idx, slots in torchs["state"].items():
            for key, value in slots.items():
                torch.testing.assert_close(mine["state"][idx][key], value, atol=1e-7, rtol=1e-6)


def test_stacked_eval_equals_quick_eval_per_seed(tiny, tmp_path):
    cfg = tiny(train_lengths="1-3", eval_n=24, steps=30)
    train_seeds(cfg, [0, 1], dirs(tmp_path, [0, 1]), quiet=True)
    runs = [open_run(resume_config(d), d, torch.device("cpu"), resume=True) for d in dirs(tmp_path, [0, 1])]
    runs[1].state.hi = 2  # a seed earlier in its curriculum is evaluated on its own lengths only
    stack = SeedStack(runs, runs[0].model)
    task = cfg.task.build()
    got = stacked_quick_eval(stack, task, runs)
    for r, accs in zip(runs, got):
        assert accs == quick_eval(r.model, task, range(1, r.state.hi + 1), 24, cfg.train.eval_seed)
    assert list(got[1]) == [1, 2] and 0 < sum(got[0].values()) < 3 and got[0] != got[1]


def test_per_seed_position_ids_are_pinned_per_seed():
    """Each seed's slice of the batched forward reads its own position ids."""
    cfg = ModelConfig(d_model=32, n_heads=2, n_ctx=64, encoding="rotary+randomized")
    models = [build_model(cfg, seed=s) for s in [0, 1]]
    params = {n: torch.stack([dict(m.named_parameters())[n] for m in models]) for n, _ in models[0].named_parameters()}
    tokens = make_task("parity").sample(torch.Generator().manual_seed(0), "1-4", 8).tokens
    ids = torch.stack([models[0].position_ids(tokens, torch.Generator().manual_seed(s)) for s in [1, 2]])
    assert not torch.equal(ids[0], ids[1])
    got = stacked_logits(models[0], params, dict(models[0].named_buffers()), torch.stack([tokens, tokens]), ids)
    for i, model in enumerate(models):
        with model.use_position_ids(ids[i]):
            torch.testing.assert_close(got[i], model(tokens))


def test_random_position_ids_come_from_each_seeds_own_stream(tiny, tmp_path):
    """With randomized positions (ids drawn from the data stream), seeds still end as if alone."""
    def cfg(seed=0):
        c = tiny(seed=seed, steps=20, eval_every=10)
        c.model = ModelConfig(n_layers=2, n_heads=2, d_model=32, n_ctx=64, encoding="rotary+randomized")
        return c

    results = train_seeds(cfg(), [0, 1], dirs(tmp_path / "multi", [0, 1]), quiet=True)
    for seed, result in zip([0, 1], results):
        alone = train(cfg(seed), tmp_path / f"alone-s{seed}", quiet=True)
        assert_same_run(result.run_dir, alone.run_dir)


def test_stacked_loss_compiles_without_graph_breaks():
    """Dynamo traces the vmapped forward and loss as one graph (what torch.compile on CUDA builds on)."""
    models = [build_model(ModelConfig(d_model=32, n_heads=2, n_ctx=64), seed=s) for s in [0, 1]]
    params = {n: torch.stack([dict(m.named_parameters())[n].detach() for m in models]).requires_grad_()
              for n, _ in models[0].named_parameters()}
    buffers = dict(models[0].named_buffers())
    batches = [make_task("parity").sample(torch.Generator().manual_seed(s), "1-4", 8) for s in [0, 1]]
    tokens, mask = stack_batches(batches)
    compiled = torch.compile(stacked_losses, backend="eager", fullgraph=True)
    torch._dynamo.reset()
    got = compiled(models[0], params, buffers, tokens, mask)
    torch.testing.assert_close(got, stacked_losses(models[0], params, buffers, tokens, mask))


def test_parse_seeds_and_sibling_dirs():
    assert parse_seeds("0-3,7") == [0, 1, 2, 3, 7]
    assert parse_seeds("5") == [5]
    for bad in ["3-1", "a", "-2", ""]:
        with pytest.raises(CompError):
            parse_seeds(bad)
    assert seed_run_dir(Path("runs/parity-rotary-s0"), 7) == Path("runs/parity-rotary-s7")
    with pytest.raises(CompError):
        seed_run_dir(Path("runs/myrun"), 1)


def test_existing_seed_directory_is_refused_before_anything_is_written(tiny, tmp_path):
    train_seeds(tiny(steps=5), [1], dirs(tmp_path, [1]), quiet=True)
    with pytest.raises(CompError, match="already exists"):
        train_seeds(tiny(steps=5), [0, 1, 2], dirs(tmp_path, [0, 1, 2]), quiet=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run-s1"]


def test_each_seed_logs_its_own_wandb_run(tiny, tmp_path):
    train_seeds(tiny(steps=10, wandb=True), [0, 1], dirs(tmp_path, [0, 1]), quiet=True)
    for d in dirs(tmp_path, [0, 1]):
        (run,) = (d / "wandb").glob("offline-run-*")
        assert run.name.endswith(d.name)  # the run id is the run directory's name


def test_cli_seeds_train_resume_and_errors(tmp_path):
    from typer.testing import CliRunner

    from comp.cli.main import app

    tiny = ["--steps", "10", "--batch-size", "8", "--train-lengths", "1-3", "--d-model", "32", "--n-heads", "2",
            "--n-ctx", "32", "--quiet", "--set", "eval_n=8", "--set", "final_eval_n=8", "--set", "threads=1",
            "--out", str(tmp_path)]
    runner = CliRunner()
    res = runner.invoke(app, ["train", "parity", "--seeds", "0-1", *tiny])
    assert res.exit_code == 0, res.output
    assert "2 seeds, trained together" in res.output and "parity-rotary-s1" in res.output
    assert all((tmp_path / f"parity-rotary-s{s}" / "eval.json").exists() for s in [0, 1])
    res = runner.invoke(app, ["train", "--resume", str(tmp_path / "parity-rotary-s0"), "--seeds", "0-1",
                              "--steps", "15", "--quiet"])
    assert res.exit_code == 0, res.output
    assert [json.loads((tmp_path / f"parity-rotary-s{s}" / "eval.json").read_text())["step"] for s in [0, 1]] == [15, 15]
    for args, message in [
        (["--seeds", "3-1"], "seed range"),
        (["--seeds", "0-1", "--seed", "4"], "not both"),
        (["--seeds", "1-2"], "already exists"),
    ]:
        res = runner.invoke(app, ["train", "parity", *args, *tiny])
        assert res.exit_code == 2 and message in res.output and "Traceback" not in res.output, res.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["parity-rotary-s0", "parity-rotary-s1"]


def test_chunked_forward_backward_gives_the_same_gradients(tiny, tmp_path):
    cfg = tiny()
    cpu = torch.device("cpu")
    runs = [open_run(with_seed(cfg, s), d, cpu, resume=False) for s, d in zip(range(3), dirs(tmp_path, range(3)))]
    stack = SeedStack(runs, runs[0].model)
    tokens, mask = stack_batches([make_task("parity").sample(torch.Generator().manual_seed(s), "1-4", 8) for s in range(3)])
    grads = []
    for chunk in [None, 2]:
        stack.zero_grad()
        losses = stack.forward_backward(tokens, mask, amp=False, chunk=chunk)
        grads.append((losses, {n: p.grad.clone() for n, p in stack.params.items()}))
    torch.testing.assert_close(grads[0][0], grads[1][0])
    for name in grads[0][1]:
        torch.testing.assert_close(grads[0][1][name], grads[1][1][name], msg=name)


def test_attention_jitter_comes_from_each_seeds_own_stream(tiny, tmp_path):
    """With attn_jitter (factors drawn from the data stream after the batch and its ids), seeds
    trained as one stack end as if trained alone (on the hook path, fast_kernels=False: the fused
    kernel's rounding of the zero-gradient b_K grows under jitter); with randomized ids too."""
    for pe in ["t5+coupling", "rotary+randomized"]:
        def cfg(seed=0, pe=pe):
            c = tiny(seed=seed, steps=20, eval_every=10, fast_kernels=False)
            c.model = ModelConfig(n_layers=2, n_heads=2, d_model=32, n_ctx=64, encoding=pe, attn_scale="logn",
                                  attn_jitter=0.75, t5_max_distance=16)
            return c

        results = train_seeds(cfg(), [0, 1], dirs(tmp_path / pe / "multi", [0, 1]), quiet=True)
        for seed, result in zip([0, 1], results):
            alone = train(cfg(seed), tmp_path / pe / f"alone-s{seed}", quiet=True)
            assert_same_run(result.run_dir, alone.run_dir)
        unjittered = cfg(0)
        unjittered.model = ModelConfig(**{**unjittered.model.to_dict(), "attn_jitter": 0.0})
        plain = train(unjittered, tmp_path / pe / "plain-s0", quiet=True)
        with pytest.raises(AssertionError):  # the jitter changes training: the test can fail
            assert_same_run(results[0].run_dir, plain.run_dir)
