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
# # Probes and the parity accumulator
#
# Where in the residual stream is the running parity? A model with chain of thought does
# not need an accumulator at the input positions: it writes `s_t` into the sequence and
# reads it back one step later. So we expect:
#
# - at the **answer** positions (the position holding `s_{t-1}`, which predicts `s_t`):
#   `s_prev` readable from the embeddings on (it is the token there), `x_t` readable only
#   once the iteration head has fetched it (layer 1 attention), and `s_t` only after the
#   layer-1 MLP has combined them;
# - at the **input** positions: `x_t` trivially (the token), but the running parity `s_t`
#   near chance for `t >= 2` — no accumulator.
#
# Each cell is a linear probe at one residual-stream point and position class, scored on
# fresh test sequences; *selectivity* subtracts the accuracy of the same probe on a
# control task (a random function of the same inputs, Hewitt & Liang 2019). See
# `docs/probes.md` for the exact definitions. `comp probe --ckpt RUN --target s_t --plot
# probe.html` gives the same from the command line.
#
# Set `COMP_NOTEBOOK_CKPT` to a trained parity run; without it the notebook uses
# `parity-rotary-s0`, training it first if needed. `COMP_NOTEBOOK_FAST=1` shrinks every
# sample (CI).

# %%
import os

import torch
from IPython.display import display

from comp.config import RunConfig
from comp.probes import TARGETS, probe_model
from comp.runs import load_run, resolve_run, runs_dir
from comp.train import train
from comp.views.probes import probe_heatmap
from comp.views.tables import print_table

torch.set_num_threads(int(os.environ.get("COMP_NOTEBOOK_THREADS", "2")))
FAST = os.environ.get("COMP_NOTEBOOK_FAST") == "1"
CKPT = os.environ.get("COMP_NOTEBOOK_CKPT", "parity-rotary-s0")
n = 48 if FAST else 512

# %%
if not (runs_dir() / CKPT).is_dir() and not os.path.isdir(CKPT):
    train(RunConfig(), runs_dir() / CKPT)  # comp's default recipe: parity, rotary, lengths 1-16
run = load_run(resolve_run(CKPT))
lengths = run.config.train.train_lengths
print(run.name, run.config.model.encoding, "trained on lengths", lengths)
for name, text in TARGETS.items():
    print(f"{name:>9}: {text}")

# %% [markdown]
# ## Three probes: `s_prev`, `x_t`, `s_t`

# %%
results = {target: probe_model(run.model, run.task, target, lengths, n_train=n, n_test=n)
           for target in ("s_prev", "x_t", "s_t")}

# %%
display(probe_heatmap(results["s_prev"], title=f"{run.name}: s_prev"))

# %%
display(probe_heatmap(results["x_t"], title=f"{run.name}: x_t"))

# %%
display(probe_heatmap(results["s_t"], title=f"{run.name}: s_t"))

# %% [markdown]
# ## The answer positions, layer by layer
# One row per residual-stream point: where each variable becomes linearly readable at
# the position that is about to write `s_t`.

# %%
table = []
for layer in results["s_t"]["layers"]:
    row = {"layer": layer}
    for target, result in results.items():
        cell = next(r for r in result["rows"] if r["layer"] == layer and r["position"] == "answer")
        row[target] = cell["acc"]
        row[f"{target} sel."] = cell["selectivity"]
    table.append(row)
print_table(table, ["layer", "s_prev", "s_prev sel.", "x_t", "x_t sel.", "s_t", "s_t sel."],
            title="probe accuracy (and selectivity) at answer positions")

# %% [markdown]
# ## Is there an accumulator at the input positions?
# The running parity `s_t` at input position `t`, against chance. With chain of thought
# we expect little above chance beyond what `x_t` itself gives (`s_1 = x_1`).

# %%
print_table([r for r in results["s_t"]["rows"] if r["position"] == "input"],
            ["layer", "acc", "control_acc", "selectivity", "chance"], title="s_t at input positions")
