"""Length buckets (comp.train.buckets): the padded step's loss and gradients, fewer tokens
computed, and runs that stay deterministic and resume exactly."""

from __future__ import annotations

import json

import pytest
import torch

from comp.io import load_tensors
from comp.model import ModelConfig, build_model
from comp.runs.load import resume_config
from comp.tasks import make_task
from comp.tasks.vocab import PAD
from comp.train import train
from comp.train.buckets import forward_backward, groups, n_buckets


def sample(n=40, lengths="1-8", seed=0):
    return make_task("parity").sample(torch.Generator().manual_seed(seed), lengths, n)


def test_groups_cover_every_row_once_and_trim_only_padding():
    batch = sample()
    parts = groups(batch.tokens, 3)
    rows = torch.cat([r for r, _ in parts])
    assert sorted(rows.tolist()) == list(range(len(batch)))
    real = (batch.tokens != PAD).sum(1)
    for r, width in parts:
        assert width == int(real[r].max())  # each group is as wide as its widest row, no wider
        assert (batch.tokens[r, width:] == PAD).all()
    computed = sum(len(r) * w for r, w in parts)
    assert computed < 0.8 * batch.tokens.numel()  # lengths 1-8: most of the padding is gone
    assert n_buckets(256, torch.device("cpu")) == 4 and n_buckets(256, torch.device("cuda")) == 1


@pytest.mark.parametrize("pe, jitter", [("rotary", 0.0), ("standard+randomized", 0.5), ("t5+coupling", 0.0),
                                        ("prevpos+abacus", 0.3), ("alibi", 0.0)])
def test_buckets_give_the_padded_loss_and_gradients(pe, jitter):
    model = build_model(ModelConfig(encoding=pe, d_model=32, n_heads=2, n_ctx=64, max_position=40,
                                    attn_jitter=jitter), seed=0).train()
    batch = sample()
    results = []
    for n in (1, 3):
        model.zero_grad(set_to_none=True)
        with model.sampled_positions(batch.tokens, torch.Generator().manual_seed(1)):
            loss = forward_backward(model, model, batch, n)
        results.append((loss, {k: p.grad.clone() for k, p in model.named_parameters() if p.grad is not None}))
    (padded, g1), (bucketed, g3) = results
    torch.testing.assert_close(bucketed, padded, atol=1e-6, rtol=1e-6)
    assert g1.keys() == g3.keys()
    for k in g1:
        torch.testing.assert_close(g3[k], g1[k], atol=1e-6, rtol=1e-4, msg=k)


def test_bucketed_training_is_deterministic_and_resumes_exactly(tiny, tmp_path):
    opts = dict(batch_size=64, train_lengths="1-6", steps=24, ckpt_every=8, eval_every=12)
    assert n_buckets(64, torch.device("cpu")) == 2
    full = train(tiny(**opts), tmp_path / "full", quiet=True).run_dir
    again = train(tiny(**opts), tmp_path / "again", quiet=True).run_dir
    calls = {"n": 0}

    def stop_at_11():
        calls["n"] += 1
        return calls["n"] == 11

    part = train(tiny(**opts), tmp_path / "part", quiet=True, should_stop=stop_at_11)
    assert part.interrupted and part.state.step == 11
    train(resume_config(tmp_path / "part"), tmp_path / "part", resume=True, quiet=True)
    ref = load_tensors(full / "model.safetensors")
    for other in (again, tmp_path / "part"):
        got = load_tensors(other / "model.safetensors")
        assert all(torch.equal(ref[k], got[k]) for k in ref)  # bitwise: same data, same layout, same kernels
    losses = [json.loads(x).get("loss") for x in (full / "metrics.jsonl").read_text().splitlines()]
    assert losses == [json.loads(x).get("loss") for x in (again / "metrics.jsonl").read_text().splitlines()]
