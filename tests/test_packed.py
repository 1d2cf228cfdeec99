"""Packed training (comp.model.packed): the layout holds every sequence once, ids restart per
sequence, and a packed step gives the padded hook path's loss and gradients for every
encoding it accepts; the others (and a hooked model) fall back to length buckets."""

from __future__ import annotations

import pytest
import torch
from test_fused import encodings, randomise_

import comp.model.packed
from comp.model import ModelConfig, build_model
from comp.model.fused import fused_training
from comp.model.packed import layout, pack, packable
from comp.tasks import make_task
from comp.tasks.vocab import PAD
from comp.train import train
from comp.train.buckets import forward_backward


def sample(lengths="1-8", n=40, seed=0):
    return make_task("parity").sample(torch.Generator().manual_seed(seed), lengths, n)


def packed_calls(monkeypatch) -> list:
    calls, original = [], comp.model.packed.packed_loss_sum

    def counting(model, packed):
        calls.append(packed.tokens.shape)
        return original(model, packed)

    monkeypatch.setattr(comp.train.buckets, "packed_loss_sum", counting)
    return calls


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_layout_places_every_sequence_once_within_its_row(seed):
    widths = torch.randint(1, 35, (200,), generator=torch.Generator().manual_seed(seed)).tolist()
    row, offset, n_rows = layout(widths, 34)
    slots = torch.zeros(n_rows, 34, dtype=torch.int)
    for r, o, w in zip(row, offset, widths):
        assert 0 <= o and o + w <= 34
        slots[r, o : o + w] += 1
    assert slots.max() == 1  # no two sequences share a slot
    assert slots.sum() == sum(widths)
    assert n_rows * 34 < 1.1 * sum(widths)  # best fit, longest first, leaves little unused
    assert layout(widths, 34) == (row, offset, n_rows)


def test_pack_holds_each_sequence_with_its_ids_and_answers():
    batch = sample("1-16", 64)
    tokens, mask = batch.tokens, batch.loss_mask
    ids = torch.randint(0, 100, tokens.shape, generator=torch.Generator().manual_seed(5))
    p = pack(tokens, mask, ids)
    width = tokens.shape[1]
    assert p.tokens.shape[1] == width
    real = (tokens != PAD).sum(1)
    for i in range(tokens.shape[0]):
        where = (p.seq == i).nonzero()
        r, cols = where[0, 0], where[:, 1]
        assert (where[:, 0] == r).all() and cols.tolist() == list(range(cols[0], cols[0] + real[i]))
        assert torch.equal(p.tokens[r, cols], tokens[i, : real[i]])
        assert torch.equal(p.ids[r, cols], ids[i, : real[i]])
        assert p.index[r, cols].tolist() == list(range(real[i]))  # restarts at each sequence
    assert (p.tokens[p.seq < 0] == PAD).all()
    # the scored positions are the answer predictions: one per answer token, same targets
    assert p.scored.numel() == mask[:, 1:].sum()
    flat_seq, flat_index = p.seq.flatten()[p.scored], p.index.flatten()[p.scored]
    assert torch.equal(p.targets, tokens[flat_seq, flat_index + 1])
    assert mask[flat_seq, flat_index + 1].all()
    # a token sees only the earlier tokens of its own sequence
    m = p.mask[:, 0]
    q, k = p.seq[:, :, None], p.seq[:, None, :]
    assert torch.equal(m, (q == k) & (torch.arange(width)[:, None] >= torch.arange(width)[None, :]))


def padded_and_packed(model, batch, gen_seed=1):
    """(loss, grads) of the padded hook path and of the fused step with packing."""
    results = []
    for n, fused in ((1, False), (3, True)):
        model.zero_grad(set_to_none=True)
        with fused_training(model, fused), model.sampled_positions(batch.tokens, torch.Generator().manual_seed(gen_seed)):
            loss = forward_backward(model, model, batch, n)
        results.append((loss, {k: p.grad.clone() for k, p in model.named_parameters() if p.grad is not None}))
    return results


def assert_same(results):
    (padded, g1), (fast, g2) = results
    torch.testing.assert_close(fast, padded, atol=1e-5, rtol=1e-5)
    assert g1.keys() == g2.keys()
    for k in g1:
        torch.testing.assert_close(g2[k], g1[k], atol=1e-5, rtol=1e-4, msg=k)


@pytest.mark.parametrize("pe", encodings())
def test_packed_step_gives_the_padded_hook_path_loss_and_gradients(pe, monkeypatch):
    model = build_model(ModelConfig(encoding=pe, d_model=32, n_heads=2, n_ctx=64, max_position=48), seed=1).train()
    randomise_(model)
    calls = packed_calls(monkeypatch)
    assert_same(padded_and_packed(model, sample()))
    unpackable = pe.split("+")[0] in ("shortformer", "prevpos")
    assert len(calls) == (0 if unpackable else 1)  # the others fall back to length buckets
    if calls:
        assert calls[0][0] < 40  # fewer rows than sequences


@pytest.mark.parametrize("pe", ["rotary", "t5+coupling", "alibi+randomized", "standard", "sinusoidal+abacus"])
@pytest.mark.parametrize("scale, jitter", [("logn", 0.0), ("logn", 0.5), ("none", 0.5)])
def test_packed_step_with_attention_temperature(pe, scale, jitter, monkeypatch):
    cfg = ModelConfig(encoding=pe, d_model=32, n_heads=2, n_ctx=64, max_position=48, attn_scale=scale, attn_jitter=jitter)
    model = build_model(cfg, seed=2).train()
    randomise_(model)
    calls = packed_calls(monkeypatch)
    assert_same(padded_and_packed(model, sample("1-12", 30, seed=3)))
    assert len(calls) == 1


def test_a_hook_or_evaluation_mode_is_not_packed():
    model = build_model(ModelConfig(encoding="standard", d_model=32, n_heads=2, n_ctx=64), seed=0).train()
    with fused_training(model):
        assert packable(model)
        model.blocks[0].hook_resid_mid.add_hook(lambda x, hook: x)
        assert not packable(model)
        model.reset_hooks()
        assert packable(model)
        model.eval()
        assert not packable(model)
    assert not packable(model.train())  # outside fused_training


def test_training_packs_every_step(tiny, tmp_path, monkeypatch):
    """The loop packs each step (the bitwise resume of packed training: test_buckets.py)."""
    calls = packed_calls(monkeypatch)
    train(tiny(batch_size=64, train_lengths="1-6", steps=12, ckpt_every=6, eval_every=6), tmp_path / "run", quiet=True)
    assert len(calls) == 12
