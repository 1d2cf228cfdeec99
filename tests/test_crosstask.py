"""Cross-task patching in a multi-task model: checks against TransformerLens and exact ground truths."""

from __future__ import annotations

import pytest
import torch
from transformer_lens import patching, utils

from comp.circuits.crosstask import _sites, cross_task_patch, with_task_token
from comp.config import TaskConfig
from comp.errors import CompError
from comp.evaluation import eval_batch
from comp.model import ModelConfig, build_model

LENGTH, N = 4, 32


def multi_model(seed: int = 1):
    task = TaskConfig(name="multi", tasks=["parity", "copy"]).build()
    model = build_model(ModelConfig(n_layers=2, n_heads=2, d_model=32, n_ctx=32, encoding="rotary"), seed=seed).eval()
    with torch.no_grad():
        model.blocks[1].attn.W_O[1].zero_()  # L1H1 writes nothing: patching it can move nothing
    return model, task


def test_embed_moves_all_dead_head_nothing_and_heads_match_transformer_lens():
    model, task = multi_model()
    r = cross_task_patch(model, task, "copy", "parity", LENGTH, N)
    assert r.moved["embed"] == pytest.approx(1.0, abs=1e-5) and r.flipped["embed"] == 1.0
    assert r.moved["L1H1"] == pytest.approx(0.0, abs=1e-6) and r.flipped["L1H1"] == 0.0
    assert 0 < r.changed <= 1 and r.effect > 0
    # the same numbers from TransformerLens's own patching (A's run as "clean", B's tokens as "corrupted")
    parity, copy = task.components()
    batch = eval_batch(parity, LENGTH, N, 12345)
    tokens_a = with_task_token(batch, copy)
    logits_a, cache_a = model.run_with_cache(tokens_a)
    logits_b = model(batch.tokens)
    pred_a, pred_b, sites = logits_a.argmax(-1), logits_b.argmax(-1), _sites(batch)

    def ld(logits):
        return (logits.gather(-1, pred_a[..., None]) - logits.gather(-1, pred_b[..., None]))[..., 0][sites].mean()

    lo, hi = ld(logits_b), ld(logits_a)
    tl = patching.get_act_patch_attn_head_out_all_pos(model, batch.tokens, cache_a, lambda lg: (ld(lg) - lo) / (hi - lo))
    for layer in range(2):
        for head in range(2):
            assert r.moved[f"L{layer}H{head}"] == pytest.approx(tl[layer, head].item(), abs=1e-5)
    assert utils.get_act_name("z", 0) in cache_a


def test_bad_pairs_are_errors():
    model, task = multi_model()
    with pytest.raises(CompError, match="different"):
        cross_task_patch(model, task, "copy", "copy", LENGTH, N)
    with pytest.raises(CompError, match="not in this run"):
        cross_task_patch(model, task, "polynomial", "copy", LENGTH, N)
    single = TaskConfig(name="parity").build()
    with pytest.raises(CompError, match="multi-task"):
        cross_task_patch(model, single, "parity", "copy", LENGTH, N)


def test_cli_on_a_saved_multi_run_and_bad_input(tmp_path):
    from typer.testing import CliRunner

    from comp.cli.main import app
    from comp.config import RunConfig, TrainConfig
    from comp.runs.state import prepare_run_dir, save_weights

    model, task = multi_model()
    cfg = RunConfig(task=TaskConfig(name="multi", tasks=["parity", "copy"]),
                    model=ModelConfig(n_layers=2, n_heads=2, d_model=32, n_ctx=32, encoding="rotary"),
                    train=TrainConfig(train_lengths=f"1-{LENGTH}"))
    run = tmp_path / "multi"
    prepare_run_dir(run, cfg)
    save_weights(run, model, cfg, step=0)
    out = tmp_path / "x.json"
    res = CliRunner().invoke(app, ["crosstask", "--ckpt", str(run), "--n", str(N), "--json", str(out)])
    assert res.exit_code == 0, res.output
    assert "copy->parity" in res.output and "parity->copy" in res.output and out.exists()
    bad = CliRunner().invoke(app, ["crosstask", str(run), "--source", "polynomial", "--json", str(tmp_path / "y.json")])
    assert bad.exit_code == 2 and bad.output.count("error:") == 1 and not (tmp_path / "y.json").exists()
    assert "deprecated; give it as --ckpt" in bad.output  # the run given positionally: still works, with a note
