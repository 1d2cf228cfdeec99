# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Finding the iteration head
#
# In a 2-layer model trained on parity with chain of thought, Cabannes et al. (2024)
# describe an *iteration head*: in the second layer, the query at the position that
# predicts `s_t` (the position holding `s_{t-1}`, or EoI for `t = 1`) attends to the input
# `x_t`, so the MLP after it can compute `s_t = s_{t-1} xor x_t`. The first layer supplies
# the position to read (every CoT position attends to EoI). This notebook looks for it
# with attention views, head scores, ablations, patching and probes.
#
# Set `COMP_NOTEBOOK_CKPT` to a trained parity run (a name under `runs/` or a path);
# without it the notebook uses `parity-rotary-s0`, training it first (a few minutes on a
# CPU) if it does not exist. `COMP_NOTEBOOK_FAST=1` shrinks every sample (CI).
#
# Head scores, ablations, patching and hypothesis tests come from `comp.circuits`, the
# same functions behind `comp heads`, `comp ablate` and `comp patch`.

# %%
import os
from dataclasses import asdict

import torch
from IPython.display import HTML, display

from comp.circuits.ablate import ablate_run
from comp.circuits.heads import SCORES, score_heads
from comp.circuits.hypotheses import assess_run
from comp.circuits.patching import patch_run
from comp.config import RunConfig
from comp.evaluation import evaluate
from comp.io import write_text
from comp.probes import probe_model
from comp.runs import load_run, resolve_run, runs_dir
from comp.train import train
from comp.views.attention import attention_view, one_sequence
from comp.views.patching import patch_heatmaps
from comp.views.probes import probe_heatmap
from comp.views.tables import print_table

torch.set_num_threads(int(os.environ.get("COMP_NOTEBOOK_THREADS", "2")))
FAST = os.environ.get("COMP_NOTEBOOK_FAST") == "1"
CKPT = os.environ.get("COMP_NOTEBOOK_CKPT", "parity-rotary-s0")
n = 32 if FAST else 512

# %%
if not (runs_dir() / CKPT).is_dir() and not os.path.isdir(CKPT):
    train(RunConfig(), runs_dir() / CKPT)  # comp's default recipe: parity, rotary, lengths 1-16
run = load_run(resolve_run(CKPT))
model, task = run.model, run.task
L = run.config.train.lengths.hi  # look at the longest training length
print(run.name, run.config.model.encoding, f"{run.config.model.n_layers} layers x {run.config.model.n_heads} heads, L = {L}")
print_table(evaluate(model, task, [L], n=n, generate=False), ["length", "acc_cot", "acc_answer"])

# %% [markdown]
# ## Attention patterns of every head
# circuitsvis `AttentionHeads`, one view per layer, on one input of the longest training
# length. Hover a head to zoom in. In layer 1, the iteration head's pattern is a diagonal
# from the CoT rows (`EoI`, `s1`, ...) back to the inputs (`x1`, `x2`, ...). The same page
# is written to `attention.html` in the run directory (self-contained, opens offline);
# `comp viz` makes it from the command line.

# %%
page = attention_view(model, task, one_sequence(task, length=L, seed=1), title=f"{run.name}: attention")
write_text(run.path / "attention.html", page)
display(HTML(page))

# %% [markdown]
# ## Head scores
# *Iteration score* (`iteration`): mean attention from the position predicting `s_t` to
# `x_t`, over `t`, lengths and sequences; `iter>0.5`: the fraction of those weights
# above 0.5 (the Iteration Head paper's two measures). *Previous-token*, *EoI*, *BOS* and
# *self* scores average the attention to those keys. `comp heads` prints the same table.

# %%
ckpt, lengths = str(run.path), str(L)
heads = score_heads(ckpt, lengths=lengths, n=n)
print_table(heads.rows, ["component", *SCORES], headers=["head", "prev", "iter", "iter>0.5", "eoi", "bos", "self"],
            title="attention head scores")
top = max(heads.rows, key=lambda r: r.iteration).component
print("iteration-head candidate:", top)

# %% [markdown]
# ## Ablation
# Mean-ablate each head and each MLP in turn (its output replaced by its mean over a
# reference set of other sequences of the same length) and measure teacher-forced
# accuracy. The iteration head and the MLP after it should be the ones whose removal hurts.

# %%
ablation = ablate_run(ckpt, method="mean", what="both", lengths=lengths, n=n)
print_table([{"component": "none (baseline)", **asdict(ablation.baseline)}, *ablation.rows],
            ["component", "acc_cot", "acc_answer", "loss"], title="mean ablation")

# %% [markdown]
# ## Activation patching
# Flip one input bit (the middle one), run the corrupted sequence, and patch clean
# activations back in, one site at a time (batched: many patches per forward pass). The
# metric is the logit difference on the first answer token the flip changes, 1 = clean,
# 0 = corrupted. The iteration head shows up as a head output at the position predicting
# that token; the flipped bit itself as the residual stream at `x_t`.

# %%
patching = patch_run(ckpt, n=n)
display(patch_heatmaps(patching))

# %% [markdown]
# ## Hypotheses
# `comp patch --hypothesis all`: the component, or group of components, playing each named
# role (in any layer), with its score, necessity (ablating it drops accuracy to chance) and
# sufficiency (mean-ablating everything else keeps accuracy), and a verdict whose reason
# names the test that failed; `paper_circuit` tests the paper's four roles as one circuit.

# %%
verdicts = assess_run(ckpt, "all", lengths=lengths, n=n)
print_table([{"hypothesis": r.hypothesis, "components": ", ".join(r.components), "score": r.score,
              "verdict": r.verdict, "reason": r.reason} for r in verdicts.hypotheses],
            ["hypothesis", "components", "score", "verdict", "reason"])

# %% [markdown]
# ## Probes: where does `x_t` arrive?
# A linear probe for `x_t` (the input the next CoT token needs) at the answer positions:
# it should be at chance before the iteration head (`resid_pre 1`) and readable after it
# (`resid_mid 1`). Selectivity subtracts a control task (see notebook 03).

# %%
result = probe_model(model, task, "x_t", run.config.train.train_lengths, n_train=n, n_test=n)
print_table([r for r in result["rows"] if r["position"] == "answer"],
            ["layer", "acc", "control_acc", "selectivity", "chance"], title="probe x_t at answer positions")
display(probe_heatmap(result, title=f"{run.name}: probe x_t"))
