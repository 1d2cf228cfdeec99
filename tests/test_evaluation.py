"""Evaluation: cached greedy decoding, fixed evaluation sets, the generate/teacher-forced identity."""

from __future__ import annotations

import contextlib

import pytest
import torch
import torch.nn.functional as F
from planted import L, planted_model

from comp.decoding import decode_after_errors, first_errors, greedy_decode, greedy_decode_uncached
from comp.errors import CompError
from comp.evaluation import eval_batch, evaluate, evaluate_length, predictions
from comp.model import ModelConfig, build_model, with_context
from comp.model.encodings import ENCODINGS, parse_encoding
from comp.tasks import Batch, make_task, vocab

COMBINATIONS = ["rotary+coupling+randomized", "t5+coupling", "alibi+coupling", "prevpos+coupling",
                "sinusoidal+randomized", "standard+coupling+abacus", "shortformer+randomized", "t5+randomized"]


@pytest.mark.parametrize("pe", [*ENCODINGS, *COMBINATIONS])
@pytest.mark.parametrize("scale", ["none", "logn"])
def test_cached_greedy_equals_recomputed_greedy(pe, scale):
    model = build_model(ModelConfig(encoding=pe, d_model=32, n_heads=2, n_ctx=64, attn_scale=scale), seed=1).eval()
    batch = eval_batch(make_task("parity"), 6, 16, seed=0)
    assert torch.equal(greedy_decode(model, batch), greedy_decode_uncached(model, batch))


def digits_only(model):
    """Let the model emit only the digits 0 and 1, so decoded rows keep the task layout (and their ids)."""
    with torch.no_grad():
        model.unembed.b_U[2:] = -1e4
    return model


@pytest.mark.parametrize("pe", ["rotary", "alibi", "t5+coupling", "rotary+coupling+randomized", "standard"])
def test_decoding_from_the_first_teacher_forced_error_is_greedy_decoding(pe):
    """Targets equal to the model's greedy output except one flipped digit per row at varied
    places: teacher forcing is right up to the flip, and decoding from there, in chunks of
    a few rows sorted by first error, gives back the greedy output of every row."""
    model = digits_only(build_model(ModelConfig(encoding=pe, d_model=32, n_heads=2, n_ctx=64,
                                                attn_scale="logn"), seed=2).eval())
    batch = eval_batch(make_task("parity"), 7, 12, seed=0)
    greedy = greedy_decode_uncached(model, batch)
    target = greedy.clone()
    start, width = int(batch.answer_start[0]), greedy.shape[1]
    flips = torch.tensor([start + (3 * r) % (width - start) for r in range(12)])  # [batch]
    flipped = torch.arange(12) % 4 != 0  # every fourth row stays right
    rows = torch.arange(12)[flipped]
    target[rows, flips[flipped]] = 1 - target[rows, flips[flipped]]
    wrong = Batch(**{**batch.__dict__, "tokens": target})
    preds = predictions(model(target), target)
    expected_first = torch.where(flipped, flips, width)
    assert torch.equal(first_errors(wrong, preds), expected_first)
    budget = 3 * 2 * 2 * 2 * width * 2 * 16 * 4  # three rows per chunk
    assert torch.equal(decode_after_errors(model, wrong, preds, budget=budget), greedy)


LONG = 1049  # parity rows of 2,100 tokens


@pytest.mark.parametrize("pe", [p for p in ENCODINGS if ENCODINGS[p].kind == "base"] + ["rotary+coupling", "t5+coupling"])
def test_every_encoding_without_a_table_runs_2100_tokens_with_and_without_cache(pe):
    """Relative, fixed and no encodings widen to 2,100 tokens (t5 distances far past
    max_distance share its last bucket); the cached forward of the last tokens equals the
    full forward there. Learned tables give a clear error naming n_ctx."""
    cfg = ModelConfig(encoding=pe, d_model=16, n_heads=2, n_ctx=64, t5_max_distance=24, attn_scale="logn")
    batch = eval_batch(make_task("parity"), LONG, 2, seed=0)
    width = batch.tokens.shape[1]
    assert width == 2100
    if parse_encoding(pe).learned_table:
        with pytest.raises(CompError, match="n_ctx=64"):
            with_context(cfg, width)
        return
    model = build_model(with_context(cfg, width), seed=0).eval()
    with torch.no_grad():
        full = model(batch.tokens)  # [2, 2100, d_vocab]
        assert torch.isfinite(full).all()
        tail = 4
        logits = greedy_tail_logits(model, batch.tokens, width - tail)
    torch.testing.assert_close(logits, full[:, -tail:], atol=1e-4, rtol=1e-4)


def greedy_tail_logits(model, tokens, start):
    """Logits of the tokens from ``start`` on, fed one at a time after a cached prefix of ``start`` tokens."""
    from transformer_lens.cache.key_value_cache import TransformerLensKeyValueCache

    cache = TransformerLensKeyValueCache.init_cache(model.cfg, tokens.device, tokens.shape[0])
    ids = model.position_ids(tokens) if model.encoding.uses_ids else None
    out = []
    pin = model.use_position_ids(ids) if ids is not None else contextlib.nullcontext()
    with pin:
        prefix = tokens[:, :start]
        model(prefix, past_kv_cache=cache, attention_mask=torch.ones_like(prefix))
        for pos in range(start, tokens.shape[1]):
            step = tokens[:, pos : pos + 1]
            out.append(model(step, past_kv_cache=cache, attention_mask=torch.ones_like(step))[:, -1])
    return torch.stack(out, 1)


def test_random_ids_past_max_position_are_a_clear_error():
    cfg = ModelConfig(encoding="rotary+randomized", d_model=16, n_heads=2, n_ctx=64)
    with pytest.raises(CompError, match="max_position=1024"):
        with_context(cfg, 2100)


def accuracies(row) -> tuple[float, ...]:
    return row.acc_cot, row.acc_answer, row.acc_generate, row.acc_generate_answer


def test_a_model_that_solves_the_task_scores_one_everywhere():
    """The hand-planted parity circuit predicts every answer token: teacher-forced and
    generated accuracies are exactly 1, and the loss is that of logits +-GAIN."""
    row = evaluate_length(planted_model().eval(), make_task("parity"), L, n=32)
    assert accuracies(row) == (1.0, 1.0, 1.0, 1.0)
    assert row.loss < 1e-2


def test_a_model_that_never_predicts_an_answer_scores_zero():
    """The same circuit with a hook on the unembedding that makes EoI win every position:
    no answer token is ever right, teacher-forced or decoded."""
    model = planted_model().eval()
    handle = model.unembed.register_forward_hook(lambda module, args, logits: logits + 1e4 * F.one_hot(
        torch.tensor(vocab.EOI), logits.shape[-1]))  # [batch, pos, d_vocab]
    row = evaluate_length(model, make_task("parity"), L, n=32)
    handle.remove()
    assert accuracies(row) == (0.0, 0.0, 0.0, 0.0)
    assert row.loss > 1e3


def test_generation_matches_teacher_forcing_on_the_whole_answer():
    """Greedy decoding is all right exactly when every teacher-forced prediction is."""
    model = build_model(ModelConfig(d_model=32, n_heads=2, n_ctx=64), seed=3).eval()
    for length in (1, 2, 5):
        row = evaluate_length(model, make_task("copy"), length, n=32)
        assert row.acc_generate == row.acc_cot


def test_eval_sets_are_fixed_per_length():
    task = make_task("parity")
    a = eval_batch(task, 7, 64, seed=1)
    b = eval_batch(task, 7, 64, seed=1)
    assert torch.equal(a.tokens, b.tokens) and (a.lengths == 7).all()
    assert not torch.equal(a.tokens, eval_batch(task, 7, 64, seed=2).tokens)


def test_evaluate_rows_cover_members_and_lengths():
    model = build_model(ModelConfig(d_model=32, n_heads=2, n_ctx=64)).eval()
    rows = evaluate(model, make_task("multi", tasks=["parity", "copy"]), [2, 3], n=8)
    assert [(r["task"], r["length"]) for r in rows] == [("parity", 2), ("parity", 3), ("copy", 2), ("copy", 3)]
    assert set(rows[0]) >= {"length", "acc_cot", "acc_answer", "acc_generate", "loss"}
