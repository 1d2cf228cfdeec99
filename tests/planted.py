"""A 2-layer model with a parity circuit planted by hand (the ground truth of the circuit tests).

Built with comp's ``build_model`` (learned absolute positions, no normalisation, ReLU
MLPs), then every weight is set by hand. It solves parity with CoT at one input length
``L`` exactly, with one-hot residual features::

    ONE (every token)   BIT (token is the digit 1)   EOI (token is EoI)   P0..P15 (position)
    A   (x_t, written by the iteration head)          Z   (s_t, written by MLP1)

- ``L0H0`` EoI anchor: every query attends to the EoI token (W_O = 0: writes nothing);
- ``L0H1`` exact previous-token head: position i attends to i - 1 (W_O = 0: unused);
- ``L1H0`` iteration head: position q attends to q - L, so the position predicting s_t
  (q = L + t) reads x_t, and copies its bit into A;
- ``L1H1`` unused: no attention preference, W_O = 0;
- ``MLP0`` unused (all zero); ``MLP1`` computes Z = BIT xor A = s_{t-1} xor x_t
  (the token at the predicting position is s_{t-1}; EoI counts as s_0 = 0);
- the unembedding reads Z: logit(1) - logit(0) = 2 * GAIN * (Z - 1/2).
"""

from __future__ import annotations

from pathlib import Path

import torch

from comp.config import RunConfig, TaskConfig, TrainConfig
from comp.model import ModelConfig, build_model
from comp.runs.state import prepare_run_dir, save_weights
from comp.tasks import vocab

L = 4  # the one input length the planted iteration head serves
ONE, BIT, EOI, A, Z, P0 = 0, 1, 2, 3, 4, 5
N_CTX = 16
SHARP = 80.0  # attention logit scale (divided by sqrt(d_head) = 4 inside the model)
GAIN = 10.0

USED = {"L1H0", "MLP1"}  # the components the computation goes through
PLANTED_HEADS = {"eoi_anchor": "L0H0", "prev_token": "L0H1", "iteration": "L1H0"}


CONFIG = dict(n_layers=2, n_heads=2, d_model=32, d_head=16, d_mlp=8, act_fn="relu", normalization="none",
              encoding="standard", n_ctx=N_CTX)


def planted_model():
    model = build_model(ModelConfig(**CONFIG), seed=0)
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        model.embed.W_E[:, ONE] = 1.0
        model.embed.W_E[1, BIT] = 1.0
        model.embed.W_E[vocab.EOI, EOI] = 1.0
        model.pos_embed.W_pos[:, P0 : P0 + N_CTX] = torch.eye(N_CTX)
        a0, a1 = model.blocks[0].attn, model.blocks[1].attn
        a0.W_Q[0, ONE, 0] = SHARP  # L0H0: constant query ...
        a0.W_K[0, EOI, 0] = 1.0  # ... matching the EoI token
        for i in range(N_CTX):
            a0.W_Q[1, P0 + i, i] = SHARP  # L0H1: query position i ...
            if i + 1 < N_CTX:
                a0.W_K[1, P0 + i, i + 1] = 1.0  # ... matches key position i + 1 - 1
            a1.W_Q[0, P0 + i, i] = SHARP  # L1H0: query position q ...
            if i + L < N_CTX:
                a1.W_K[0, P0 + i, i + L] = 1.0  # ... matches key position q - L
        a1.W_V[0, BIT, 0] = 1.0  # L1H0 copies the bit it reads ...
        a1.W_O[0, 0, A] = 1.0  # ... into A
        m1 = model.blocks[1].mlp
        m1.W_in[BIT, :2] = 1.0  # h0 = relu(BIT + A), h1 = relu(BIT + A - 1)
        m1.W_in[A, :2] = 1.0
        m1.b_in[1] = -1.0
        m1.W_out[0, Z] = 1.0  # Z = h0 - 2 h1 = BIT xor A
        m1.W_out[1, Z] = -2.0
        model.unembed.W_U[Z, 1] = GAIN
        model.unembed.W_U[Z, 0] = -GAIN
        model.unembed.b_U[:] = -100.0  # only the digits 0 and 1 are ever predicted
        model.unembed.b_U[0] = GAIN
        model.unembed.b_U[1] = 0.0
    return model.eval()


def save_planted_run(run_dir: Path) -> Path:
    """The planted model saved as a comp run trained on length L (for the CLI)."""
    cfg = RunConfig(task=TaskConfig(name="parity"), model=ModelConfig(**CONFIG), train=TrainConfig(train_lengths=str(L)))
    prepare_run_dir(run_dir, cfg)
    save_weights(run_dir, planted_model(), cfg, step=0)
    return run_dir
