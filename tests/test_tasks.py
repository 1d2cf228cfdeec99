"""Task formats, masks and sampling against hand-written examples."""

from __future__ import annotations

import pytest
import torch

from comp.errors import CompError
from comp.tasks import LengthRange, make_task, parse_lengths, score
from comp.tasks import vocab as V

P, E, S = V.PAD, V.EOI, V.SLACK


def batch_of(task, rows: list[list[int]]):
    lmax = max(len(r) for r in rows)
    x = torch.tensor([r + [task.alphabet[0]] * (lmax - len(r)) for r in rows])
    return task.make_batch(x, torch.tensor([len(r) for r in rows]))


def test_parity_cot_format_and_mask():
    task = make_task("parity")
    b = batch_of(task, [[1, 0, 1, 1], [1, 1]])
    T = V.TASK_TOKENS["parity"]
    assert b.tokens.tolist() == [
        [T, 1, 0, 1, 1, E, 1, 1, 0, 1],
        [T, 1, 1, E, 1, 0, P, P, P, P],
    ]
    assert b.loss_mask.int().tolist() == [[0, 0, 0, 0, 0, 0, 1, 1, 1, 1], [0, 0, 0, 0, 1, 1, 0, 0, 0, 0]]
    assert b.eoi_pos.tolist() == [5, 3]
    assert b.answer_start.tolist() == [6, 4]
    assert b.answer_pos.tolist() == [9, 5]
    assert b.input_positions().tolist() == [[1, 2, 3, 4], [1, 2, -1, -1]]


def test_parity_nocot_and_slack():
    T = V.TASK_TOKENS["parity_nocot"]
    b = batch_of(make_task("parity_nocot"), [[1, 0, 1, 1]])
    assert b.tokens.tolist() == [[T, 1, 0, 1, 1, E, 1]]
    assert b.loss_mask.int().tolist() == [[0, 0, 0, 0, 0, 0, 1]]
    b = batch_of(make_task("parity_nocot", slack=2), [[1, 0, 1, 1], [1]])
    assert b.tokens.tolist() == [[T, 1, 0, 1, 1, E, S, S, 1], [T, 1, E, S, S, 1, P, P, P]]
    assert b.loss_mask.int().tolist() == [[0] * 8 + [1], [0] * 5 + [1, 0, 0, 0]]
    assert b.answer_pos.tolist() == [8, 5]


def test_copy_and_polynomial():
    b = batch_of(make_task("copy"), [[1, 0, 1, 1]])
    assert b.tokens.tolist() == [[V.TASK_TOKENS["copy"], 1, 0, 1, 1, E, 1, 0, 1, 1]]
    b = batch_of(make_task("polynomial"), [[3, 2, 5]])
    # s1 = 3, s2 = 3*2+1 = 7, s3 = 7*5+1 = 36 = 3 (mod 11)
    assert b.tokens.tolist() == [[V.TASK_TOKENS["polynomial"], 3, 2, 5, E, 3, 7, 3]]


def test_mixture_splits_rows_and_tokens():
    task = make_task("multi", tasks=["parity", "copy", "polynomial"])
    b = task.sample(torch.Generator().manual_seed(0), "2-5", 7)
    assert b.task_tokens.tolist() == [16, 16, 16, 18, 18, 19, 19]
    assert (b.tokens[:, 0] == b.task_tokens).all()
    for row in range(7):  # every row is a valid sequence of its own task
        member = {16: "parity", 18: "copy", 19: "polynomial"}[int(b.task_tokens[row])]
        sub = b.select(torch.tensor([row]))
        L = int(sub.lengths[0])
        x = sub.tokens[:, 1 : L + 1]
        ref = batch_of(make_task(member), [x[0].tolist()])
        assert sub.tokens[0, : ref.tokens.shape[1]].tolist() == ref.tokens[0].tolist()


def test_sampling_is_seeded_and_in_range():
    task = make_task("polynomial")
    a = task.sample(torch.Generator().manual_seed(3), "2-9", 64)
    b = task.sample(torch.Generator().manual_seed(3), "2-9", 64)
    assert torch.equal(a.tokens, b.tokens)
    assert a.lengths.min() >= 2 and a.lengths.max() <= 9 and len(set(a.lengths.tolist())) > 3
    for row in range(64):
        L = int(a.lengths[row])
        assert all(1 <= v <= 10 for v in a.tokens[row, 1 : L + 1].tolist())
    c = task.sample(torch.Generator().manual_seed(4), "2-9", 64)
    assert not torch.equal(a.tokens, c.tokens)


def test_score_cot_and_answer():
    task = make_task("parity")
    b = batch_of(task, [[1, 0, 1, 1], [1, 1, 0, 0]])
    preds = b.tokens.clone()
    s = score(b, preds)
    assert s["cot"].tolist() == [True, True] and s["answer"].tolist() == [True, True]
    preds[0, 7] = 1 - preds[0, 7]  # a wrong middle step, right final answer
    preds[1, 9] = 1 - preds[1, 9]  # a wrong final answer
    preds[:, 1] = 5  # errors outside the answer region do not count
    s = score(b, preds)
    assert s["cot"].tolist() == [False, False] and s["answer"].tolist() == [True, False]


def test_length_parsing():
    assert parse_lengths("1-3,8") == [1, 2, 3, 8]
    assert LengthRange.parse("4-16") == LengthRange(4, 16)
    for bad in ["", "16-1", "0-4", "a-b", "1-3,x"]:
        with pytest.raises(CompError):
            parse_lengths(bad)
    with pytest.raises(CompError, match="contiguous"):
        LengthRange.parse("1-3,8")


def test_unknown_task_lists_valid_ones():
    with pytest.raises(CompError, match="parity, parity_nocot, copy, polynomial, multi"):
        make_task("parityy")
    with pytest.raises(CompError, match="--tasks"):
        make_task("multi")


def test_vocab_decode():
    assert V.decode([16, 1, 0, 12, 1, 1, 11]) == "<parity> 1 0 EoI 1 1"
