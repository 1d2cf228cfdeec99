"""Reproducibility at the default thread count: every trainable table lookup has a
backward that sums in a fixed order (see :mod:`comp.determinism`)."""

from __future__ import annotations

import pytest
import torch

from comp.determinism import LookupEmbed, lookup
from comp.evaluation import masked_loss
from comp.model import ModelConfig, build_model
from comp.model.encodings import ENCODINGS
from comp.tasks import make_task

BASES = [n for n, e in ENCODINGS.items() if e.kind == "base"]
# a gradient of W_E this big (128 x 18 x 32 > 32768 elements) takes PyTorch's parallel
# index_put path with atomic adds, the one that made two identical runs differ
BATCH = make_task("parity").sample(torch.Generator().manual_seed(0), "8", 128)


def grads(encoding: str) -> dict[str, torch.Tensor]:
    model = build_model(ModelConfig(encoding=encoding, d_model=32, n_heads=2, n_ctx=64), seed=0)
    with model.sampled_positions(BATCH.tokens, torch.Generator().manual_seed(1)):
        masked_loss(model(BATCH.tokens), BATCH).backward()
    return {k: p.grad for k, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("encoding", [*BASES, "standard+randomized", "t5+coupling", "prevpos+abacus"])
def test_gradients_are_bit_identical_across_runs_at_the_default_threads(encoding, default_threads):
    assert torch.get_num_threads() > 1
    a, b = grads(encoding), grads(encoding)
    assert a.keys() == b.keys() and "embed.W_E" in a
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_lookup_is_indexing_with_the_same_gradient_values():
    table = torch.randn(7, 5, requires_grad=True)
    ids = torch.tensor([[0, 3, 3], [6, 0, 3]])
    out = lookup(table, ids)
    assert torch.equal(out, table[ids])
    (out * torch.arange(30.0).view(2, 3, 5)).sum().backward()
    expected = torch.zeros(7, 5).index_put_((ids.flatten(),), torch.arange(30.0).view(6, 5), accumulate=True)
    assert torch.equal(table.grad, expected)


def test_token_embedding_uses_the_lookup_and_keeps_weights_and_hooks():
    model = build_model(ModelConfig(d_model=32, n_heads=2, n_ctx=64), seed=0)
    assert type(model.embed) is LookupEmbed
    _, cache = model.run_with_cache(BATCH.tokens[:2])
    assert torch.equal(cache["hook_embed"], model.W_E[BATCH.tokens[:2]])
