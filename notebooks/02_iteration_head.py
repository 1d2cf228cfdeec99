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
# > **Cells marked `TODO(issue 4)`** compute head scores, ablations and patching by hand
# > with TransformerLens hooks. They will be replaced by calls into `comp.circuits` once
# > it lands; keep their outputs comparable when switching.

# %%
import os

import torch
from IPython.display import HTML, display
from transformer_lens.utilities import get_act_name

from comp.cli.common import print_table
from comp.config import RunConfig
from comp.evaluation import eval_batch, evaluate, predictions
from comp.io import write_text
from comp.probes import probe_heatmap, probe_model
from comp.runs import load_run, resolve_run, runs_dir
from comp.tasks import score
from comp.train import train
from comp.viz import attention_view, one_sequence

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
# ## Head scores — TODO(issue 4): replace with `comp.circuits` head scores
# *Iteration score*: mean attention from the position predicting `s_t` to `x_t`, over
# `t` and sequences. *Previous-token score*: mean attention from each CoT position to
# the position before it.

# %%
# TODO(issue 4): replace this cell with comp.circuits head scores.
batch = eval_batch(task, L, n, seed=0)
names = [get_act_name("pattern", layer) for layer in range(model.cfg.n_layers)]
_, cache = model.run_with_cache(batch.tokens, names_filter=lambda name: name in names)
steps = torch.arange(L)
query = (batch.answer_start[:, None] - 1 + steps)[:, None, :]  # [batch, 1, L]: predicts s_t
key = batch.input_positions()[:, None, :]  # [batch, 1, L]: holds x_t
rows = []
for layer, name in enumerate(names):
    pattern = cache[name]  # [batch, head, q, k]
    b = torch.arange(len(batch))[:, None, None]
    h = torch.arange(model.cfg.n_heads)[None, :, None]
    iteration = pattern[b, h, query, key].mean((0, 2))  # [head]
    previous = pattern[b, h, query[..., 1:], query[..., 1:] - 1].mean((0, 2))  # [head]
    for head in range(model.cfg.n_heads):
        rows.append({"head": f"L{layer}H{head}", "iteration": iteration[head].item(), "previous": previous[head].item()})
print_table(rows, ["head", "iteration", "previous"], title="attention head scores")
top = max(rows, key=lambda r: r["iteration"])["head"]
print("iteration-head candidate:", top)

# %% [markdown]
# ## Ablation — TODO(issue 4): replace with `comp.circuits` ablation
# Zero each head's output (`hook_z`) and measure teacher-forced whole-CoT accuracy. The
# iteration head should be the one whose removal hurts most.

# %%
# TODO(issue 4): replace this cell with comp.circuits ablation.
def zero_head(head):
    def hook(z, hook):  # z: [batch, pos, head, d_head]
        z[:, :, head] = 0.0
        return z

    return hook


base = score(batch, predictions(model(batch.tokens), batch.tokens))["cot"].float().mean().item()
ablation = []
for layer in range(model.cfg.n_layers):
    for head in range(model.cfg.n_heads):
        logits = model.run_with_hooks(batch.tokens, fwd_hooks=[(get_act_name("z", layer), zero_head(head))])
        acc = score(batch, predictions(logits, batch.tokens))["cot"].float().mean().item()
        ablation.append({"head": f"L{layer}H{head}", "acc_cot": acc, "drop": base - acc})
print_table(ablation, ["head", "acc_cot", "drop"], title=f"zero ablation (unablated acc_cot {base:.3f})")

# %% [markdown]
# ## Patching — TODO(issue 4): replace with `comp.circuits` activation patching
# A corrupted copy of each sequence flips every input bit but keeps the chain of thought.
# With the clean `s_{t-1}` in context, a model reading `x_t` would then predict the
# opposite bit. Patching one head's output from the corrupted run into the clean run at
# the CoT positions shows which head carries `x_t`: the *flip rate* is the fraction of CoT
# predictions that change to the opposite bit.

# %%
# TODO(issue 4): replace this cell with comp.circuits activation patching.
corrupt = batch.tokens.clone()
corrupt[:, 1 : L + 1] = 1 - corrupt[:, 1 : L + 1]  # every input bit flipped (parity inputs are 0/1)
_, corrupt_cache = model.run_with_cache(corrupt, names_filter=lambda name: name.endswith("hook_z"))
clean_pred = predictions(model(batch.tokens), batch.tokens)
cot = batch.loss_mask
patching = []
for layer in range(model.cfg.n_layers):
    for head in range(model.cfg.n_heads):
        def patch(z, hook, head=head):  # z: [batch, pos, head, d_head]
            z[:, :, head] = corrupt_cache[hook.name][:, :, head]
            return z

        logits = model.run_with_hooks(batch.tokens, fwd_hooks=[(get_act_name("z", layer), patch)])
        flipped = (predictions(logits, batch.tokens) == 1 - clean_pred) & cot
        patching.append({"head": f"L{layer}H{head}", "flip_rate": (flipped.sum() / cot.sum()).item()})
print_table(patching, ["head", "flip_rate"], title="patching each head from the input-flipped run")

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
