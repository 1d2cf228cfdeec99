"""Evaluation: cached greedy decoding, fixed evaluation sets, the generate/teacher-forced identity."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from planted import L, planted_model

from comp.evaluation import eval_batch, evaluate, evaluate_length, greedy_decode
from comp.model import ModelConfig, build_model
from comp.model.encodings import ENCODINGS
from comp.tasks import make_task, vocab

COMBINATIONS = ["rotary+coupling+randomized", "t5+coupling", "alibi+coupling", "prevpos+coupling",
                "sinusoidal+randomized", "standard+coupling+abacus", "shortformer+randomized", "t5+randomized"]


def naive_greedy(model, batch):
    """Greedy decoding by full recomputation; ids are those of the full-length sequence."""
    tokens = batch.tokens.clone()
    ids = model.position_ids(tokens)
    for pos in range(int(batch.answer_start[0]), tokens.shape[1]):
        if model.encoding.uses_ids:
            with model.use_position_ids(ids[:, :pos]):
                tokens[:, pos] = model(tokens[:, :pos])[:, -1].argmax(-1)
        else:
            tokens[:, pos] = model(tokens[:, :pos])[:, -1].argmax(-1)
    return tokens


@pytest.mark.parametrize("pe", [*ENCODINGS, *COMBINATIONS])
def test_cached_greedy_equals_recomputed_greedy(pe):
    model = build_model(ModelConfig(encoding=pe, d_model=32, n_heads=2, n_ctx=64), seed=1).eval()
    batch = eval_batch(make_task("parity"), 6, 16, seed=0)
    assert torch.equal(greedy_decode(model, batch), naive_greedy(model, batch))


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
