"""Positional encodings: each property proved, not only run (ids, invariances, formulas, limits)."""

from __future__ import annotations

import math

import pytest
import torch

from comp.config import RunConfig, TaskConfig, TrainConfig
from comp.errors import CompError
from comp.evaluation import evaluate_run
from comp.model import ModelConfig, build_model
from comp.model.encodings import ENCODINGS, canonical_encoding
from comp.model.encodings.positions import coupled_ids, natural_ids
from comp.runs.load import load_run, resume_config
from comp.tasks import make_task
from comp.tasks import vocab as V
from comp.train import train

T, E, S, PAD = V.TASK_TOKENS["parity"], V.EOI, V.SLACK, V.PAD


def small(pe: str, **kw) -> ModelConfig:
    return ModelConfig(encoding=pe, d_model=32, n_heads=2, n_ctx=64, **kw)


def parity_tokens(length: int = 6, n: int = 8, seed: int = 0) -> torch.Tensor:
    return make_task("parity").sample(torch.Generator().manual_seed(seed), length, n).tokens


# ---- names ------------------------------------------------------------------------------
def test_canonical_names_and_bad_combinations():
    assert canonical_encoding("coupling") == "rotary+coupling"
    assert canonical_encoding("randomized+rope+coupling") == "rotary+coupling+randomized"
    assert canonical_encoding("abacus") == "standard+abacus"
    assert ModelConfig(encoding="coupling+rope").encoding == "rotary+coupling"
    for bad, msg in [("rotary+abacus", "rotary does not combine with abacus"), ("rotary+alibi", "two bases"),
                     ("nope+coupling", "nope \\+ nothing"), ("standard+randomized+abacus", "pick one"),
                     ("rotary+", "empty part"), ("rope+rotary", "twice")]:
        with pytest.raises(CompError, match=msg):
            canonical_encoding(bad)
    with pytest.raises(CompError, match="allowed: standard \\+ coupling/randomized/abacus"):
        canonical_encoding("alibi+abacus")


# ---- coupling and random ids -------------------------------------------------------------
def test_coupled_ids_by_hand():
    toks = torch.tensor([[T, 1, 0, 1, 1, E, 1, 1, 0, 1], [T, 1, 1, E, 1, 0, PAD, PAD, PAD, PAD]])
    assert coupled_ids(toks).tolist() == [[0, 1, 2, 3, 4, 0, 1, 2, 3, 4], [0, 1, 2, 0, 1, 2, 0, 0, 0, 0]]
    nocot = V.TASK_TOKENS["parity_nocot"]  # the single answer s_L shares the id of x_L; slack plays s_0
    toks = torch.tensor([[nocot, 1, 0, 1, 1, E, S, S, 1]])
    assert coupled_ids(toks).tolist() == [[0, 1, 2, 3, 4, 0, 0, 0, 4]]


def test_coupled_ids_are_causal_on_every_task():
    task = make_task("multi", tasks=["parity", "parity_nocot", "copy", "polynomial"], slack=1)
    toks = task.sample(torch.Generator().manual_seed(1), "1-7", 16).tokens
    full = coupled_ids(toks)
    for k in range(1, toks.shape[1] + 1):
        assert torch.equal(coupled_ids(toks[:, :k]), full[:, :k])
    batch = make_task("parity").sample(torch.Generator().manual_seed(2), "3-9", 32)
    ids = coupled_ids(batch.tokens)  # s_t (answer index a0 + t - 1) has the id t of x_t
    pos = batch.input_positions()  # [batch, L]: index of x_t
    for t in range(int(batch.lengths.min())):
        assert torch.equal(ids.gather(1, pos[:, t : t + 1]), ids.gather(1, batch.answer_start[:, None] + t))


@pytest.mark.parametrize("pe", ["rotary+randomized", "standard+coupling+randomized"])
def test_randomized_ids_sorted_in_range_from_the_generator_and_fixed_at_eval(pe):
    model = build_model(small(pe, max_position=50)).train()
    batch = make_task("parity").sample(torch.Generator().manual_seed(0), "1-8", 256)
    ids = model.position_ids(batch.tokens, torch.Generator().manual_seed(5))
    again = model.position_ids(batch.tokens, torch.Generator().manual_seed(5))
    assert torch.equal(ids, again) and not torch.equal(ids, model.position_ids(batch.tokens, torch.Generator().manual_seed(6)))
    layout = (coupled_ids if model.encoding.coupling else natural_ids)(batch.tokens)  # the layout's ids
    real = batch.tokens != PAD
    assert ids.min() >= 0 and ids.max() < 50 and ids.max() > 40  # spread over the whole range
    for row in range(256):
        base, got = layout[row][real[row]], ids[row][real[row]]
        k = int(base.max()) + 1
        mapping = {}
        for b, g in zip(base.tolist(), got.tolist()):
            assert mapping.setdefault(b, g) == g  # equal layout ids stay equal (coupling kept)
        values = [mapping[i] for i in range(k)]
        assert values == sorted(set(values)) and len(values) == k  # strictly increasing: sorted, distinct
    model.eval()  # evaluation: fixed random ids, the same for every row spanning the same K ids
    ev = model.position_ids(batch.tokens)
    assert torch.equal(ev, model.position_ids(batch.tokens.flip(0)).flip(0))  # batching does not matter
    assert ev.max() < 50
    by_k = {}
    for row in range(256):
        base, got = layout[row][real[row]], ev[row][real[row]]
        k = int(base.max()) + 1
        mapping = dict(zip(base.tolist(), got.tolist()))
        values = [mapping[i] for i in range(k)]
        assert values == sorted(set(values)) and len(values) == k
        assert by_k.setdefault(k, values) == values
    assert len({tuple(v) for v in by_k.values()}) == len(by_k) > 3


def test_abacus_offsets_one_per_row_within_range_none_at_eval():
    model = build_model(small("standard+abacus", max_position=40)).train()
    batch = make_task("parity").sample(torch.Generator().manual_seed(0), "1-6", 128)
    ids = model.position_ids(batch.tokens, torch.Generator().manual_seed(1))
    real = batch.tokens != PAD
    offset = ids[:, 0]
    natural = torch.arange(batch.tokens.shape[1])[None].expand_as(ids)
    assert torch.equal(torch.where(real, ids, 0), torch.where(real, natural + offset[:, None], 0))
    assert ids[real].max() < 40 and offset.min() >= 0
    assert len(set(offset.tolist())) > 10 and int((torch.where(real, ids, 0)).max()) >= 35
    model.eval()
    assert torch.equal(model.position_ids(batch.tokens), natural)


# ---- what each encoding sees -------------------------------------------------------------
def _scores(model, tokens, ids) -> list[torch.Tensor]:
    with model.use_position_ids(ids):
        _, cache = model.run_with_cache(tokens, names_filter=lambda n: n.endswith("attn_scores"))
    return [cache["attn_scores", layer] for layer in range(model.cfg.n_layers)]


@pytest.mark.parametrize("pe", ["rotary+randomized", "alibi+randomized", "t5"])
def test_relative_scores_unchanged_when_all_positions_shift(pe):
    model = build_model(small(pe), seed=3).eval()
    with torch.no_grad():  # give the t5 buckets distinct biases so positions matter
        for block in model.blocks:
            if hasattr(block.attn, "t5_bias"):
                block.attn.t5_bias.normal_()
    tokens = parity_tokens()
    ids = torch.arange(tokens.shape[1]).expand_as(tokens)
    base = _scores(model, tokens, ids)
    for a, b in zip(base, _scores(model, tokens, ids + 37)):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)
    stretched = _scores(model, tokens, ids * 3)  # a change in distances does change the scores
    assert not torch.allclose(base[0], stretched[0], atol=1e-3)


@pytest.mark.parametrize("plain, with_ids", [("rotary", "rotary+randomized"), ("alibi", "alibi+randomized"),
                                              ("standard", "standard+randomized")])
def test_id_encodings_equal_transformer_lens_own_at_evaluation(plain, with_ids):
    """comp's id-reading rotary, ALiBi and table give TransformerLens's logits for natural ids."""
    ref, ours = build_model(small(plain), seed=1).eval(), build_model(small(with_ids), seed=1).eval()
    with torch.no_grad():
        for name, p in ours.named_parameters():
            src = dict(ref.named_parameters())[name]
            p[: src.shape[0]].copy_(src)  # a randomized table has more rows
    tokens = parity_tokens(9)
    with ours.use_position_ids(torch.arange(tokens.shape[1]).expand_as(tokens)):
        torch.testing.assert_close(ours(tokens), ref(tokens), atol=1e-5, rtol=1e-5)


def test_nope_has_no_position_signal_beyond_the_causal_mask():
    """Positions reach a NoPE model only through the causal mask: one causal layer cannot tell the order
    of the tokens before the last, and without the mask the whole model is permutation-equivariant."""
    tokens = parity_tokens(8, n=4)
    n = tokens.shape[1]
    perm = torch.cat([torch.randperm(n - 1, generator=torch.Generator().manual_seed(0)), torch.tensor([n - 1])])
    for pe, moved in [("nope", False), ("rotary", True)]:
        one = build_model(ModelConfig(encoding=pe, n_layers=1, d_model=32, n_heads=2, n_ctx=64), seed=2).eval()
        assert moved != torch.allclose(one(tokens)[:, -1], one(tokens[:, perm])[:, -1], atol=1e-5)
        deep = build_model(small(pe), seed=2).eval()
        deep.cfg.attention_dir = "bidirectional"
        assert moved != torch.allclose(deep(tokens)[:, perm], deep(tokens[:, perm]), atol=1e-5)
    _, cache = build_model(small("nope")).run_with_cache(tokens)
    assert not cache["hook_pos_embed"].any()


def test_sinusoidal_matches_the_formula():
    model = build_model(small("sinusoidal+randomized")).eval()
    tokens = parity_tokens(5, n=2)
    ids = torch.tensor([[0, 3, 7, 100, 511, 900] + list(range(1000, 1000 + tokens.shape[1] - 6))] * 2)
    with model.use_position_ids(ids):
        _, cache = model.run_with_cache(tokens)
    pe, d = cache["hook_pos_embed"], 32
    for col in range(6):
        p = int(ids[0, col])
        for k in range(d // 2):
            assert pe[0, col, 2 * k].item() == pytest.approx(math.sin(p / 10000 ** (2 * k / d)), abs=1e-5)
            assert pe[0, col, 2 * k + 1].item() == pytest.approx(math.cos(p / 10000 ** (2 * k / d)), abs=1e-5)
    plain = build_model(small("sinusoidal"))
    torch.testing.assert_close(plain.W_pos[7], pe[0, 2])


def test_prevpos_reads_the_previous_tokens_id_and_has_its_hook():
    model = build_model(small("prevpos+coupling")).eval()
    tokens = parity_tokens(5, n=3)
    _, cache = model.run_with_cache(tokens)
    pos, prev = cache["pos_embed.hook_pos"], cache["pos_embed.hook_prev_pos"]
    assert not prev[:, 0].any()
    torch.testing.assert_close(prev[:, 1:], pos[:, :-1])
    torch.testing.assert_close(cache["hook_pos_embed"], torch.cat([pos, prev], -1) @ model.pos_embed.W_proj)


def test_t5_bias_has_its_hook_and_buckets():
    model = build_model(small("t5")).eval()
    with torch.no_grad():
        model.blocks[1].attn.t5_bias.copy_(torch.arange(32.0)[:, None].expand(32, 2))  # bias = bucket number
    tokens = parity_tokens(10, n=1)
    _, cache = model.run_with_cache(tokens)
    bias = cache["blocks.1.attn.hook_t5_bias"]  # [batch, head, query, key]
    dist = torch.arange(tokens.shape[1])[:, None] - torch.arange(tokens.shape[1])[None]  # query - key
    # unidirectional T5 buckets: distances 0..15 exact, then logarithmic up to max_distance
    lower = dist >= 0
    torch.testing.assert_close(bias[0, 0][lower & (dist < 16)], dist[lower & (dist < 16)].float())


def test_rotary_coupling_makes_the_iteration_offset_fixed():
    """Under rotary+coupling, query s_{t-1} and key x_t are one id apart for every t and L."""
    for length in (3, 9, 40):
        batch = make_task("parity").sample(torch.Generator().manual_seed(length), length, 4)
        ids = coupled_ids(batch.tokens)
        q = batch.answer_start[:, None] - 1 + torch.arange(length)[None]  # EoI, s_1 .. s_{L-1}
        k = batch.input_positions()  # x_1 .. x_L
        assert (ids.gather(1, k) - ids.gather(1, q) == 1).all()


# ---- runs: save, load, evaluate past training ----------------------------------------------
@pytest.mark.parametrize("pe", [*ENCODINGS, "t5+coupling", "standard+coupling+randomized"])
def test_every_encoding_saves_loads_and_evaluates_beyond_training(pe, tmp_path):
    cfg = RunConfig(task=TaskConfig("parity"), model=ModelConfig(encoding=pe, d_model=16, n_heads=2, n_ctx=24,
                                                                   max_position=40),
                    train=TrainConfig(steps=4, batch_size=8, train_lengths="1-3", eval_every=0, final_eval_n=4,
                                      warmup_steps=1, threads=1, ckpt_every=10, log_every=2))
    run = train(cfg, tmp_path / "r", quiet=True).run_dir
    loaded, model = load_run(run), build_model(cfg.model, seed=0)
    tokens = parity_tokens(3)
    model.load_state_dict(dict(loaded.model.named_parameters()), strict=False)
    torch.testing.assert_close(loaded.model(tokens), model.eval()(tokens), atol=0, rtol=0)
    spec = loaded.model.encoding
    for length, seq in [(14, 30), (25, 52)]:  # 30 > n_ctx = 24; 52 > max_position = 40
        limit, bound = spec.id_limit(cfg.model)
        if limit is not None and seq > limit:
            with pytest.raises(CompError, match=f"{bound}={limit}"):
                evaluate_run(str(run), str(length), n=4)
        else:
            rows = evaluate_run(str(run), str(length), n=4)["rows"]
            assert rows[0]["length"] == length and 0 <= rows[0]["acc_cot"] <= 1


def test_randomized_training_resumes_exactly(tiny, tmp_path):
    cfg = tiny(steps=30)
    cfg.model = ModelConfig(n_layers=2, n_heads=2, d_model=32, n_ctx=64, encoding="rotary+coupling+randomized",
                            max_position=128)
    full = train(cfg, tmp_path / "full", quiet=True).run_dir
    calls = {"n": 0}

    def stop_at_13():
        calls["n"] += 1
        return calls["n"] == 13

    assert train(cfg, tmp_path / "part", quiet=True, should_stop=stop_at_13).interrupted
    train(resume_config(tmp_path / "part"), tmp_path / "part", resume=True, quiet=True)
    a, b = load_run(full).model, load_run(tmp_path / "part").model
    for (name, p), q in zip(a.named_parameters(), b.parameters()):
        assert torch.equal(p, q), name
    other = tiny(steps=30)  # same data seed, no random ids: different weights, so the ids mattered
    other.model = ModelConfig(n_layers=2, n_heads=2, d_model=32, n_ctx=64, encoding="rotary+coupling")
    c = load_run(train(other, tmp_path / "c", quiet=True).run_dir).model
    assert not torch.equal(a.blocks[0].attn.W_Q, c.blocks[0].attn.W_Q)


def test_training_lengths_must_fit_the_id_range():
    cfg = RunConfig(model=ModelConfig(encoding="randomized", max_position=20), train=TrainConfig(train_lengths="1-16"))
    with pytest.raises(CompError, match="max_position=20"):
        cfg.validate()
