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


def zeroed_with_embeddings(config: dict, p0: int):
    """A model of ``config`` with every weight zero but the token features (ONE, BIT, EOI)
    and one-hot positions from residual dimension ``p0`` on."""
    model = build_model(ModelConfig(**config), seed=0)
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        model.embed.W_E[:, ONE] = 1.0
        model.embed.W_E[1, BIT] = 1.0
        model.embed.W_E[vocab.EOI, EOI] = 1.0
        model.pos_embed.W_pos[:, p0 : p0 + N_CTX] = torch.eye(N_CTX)
    return model


@torch.no_grad()
def plant_accumulator(model) -> None:
    """MLP1 computes Z = BIT xor A, and the unembedding reads Z."""
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


def planted_model():
    model = zeroed_with_embeddings(CONFIG, P0)
    with torch.no_grad():
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
        plant_accumulator(model)
    return model.eval()


def save_planted_run(run_dir: Path, discovery: bool = False, model=None, config: "dict | None" = None) -> Path:
    """The planted model (or :func:`discovery_model`, or ``model`` built from its config, or
    from ``config``) saved as a comp run trained on length L (for the CLI)."""
    config = config or (DISCOVERY_CONFIG if discovery else CONFIG)
    cfg = RunConfig(task=TaskConfig(name="parity"), model=ModelConfig(**config), train=TrainConfig(train_lengths=str(L)))
    prepare_run_dir(run_dir, cfg)
    save_weights(run_dir, model or (discovery_model() if discovery else planted_model()), cfg, step=0)
    return run_dir


# ---- a planted circuit for discovery: an MLP role, a role split over two heads, decoys ----------
# Features: ONE, BIT, EOI as above; C (x_t copied by MLP0); A (x_t, half from each of L1H0 and L1H1);
# Z (s_t, computed by MLP1). Decoys attend sharply but write nothing (W_O = 0): L0H0 (EoI
# anchor), L0H1 (previous token), L1H2 (a third iteration head); L0H2, L0H3, L1H3 are empty.
C_FEAT, D_P0 = 5, 6
DISCOVERY_CONFIG = dict(n_layers=2, n_heads=4, d_model=32, d_head=16, d_mlp=8, act_fn="relu", normalization="none",
                        encoding="standard", n_ctx=N_CTX)
# the planted circuit under mean or resample ablation at length L, positions split by class
# (edges that carry positions only, such as the iteration heads' q and k, are the same in
# every sequence and so outside it)
DISCOVERY_NODES = {"embed@input", "embed@answer", "MLP0@input", "L1H0@eoi", "L1H0@answer", "L1H1@eoi",
                   "L1H1@answer", "MLP1@eoi", "MLP1@answer", "logits"}
DISCOVERY_EDGES = {"embed@input -> MLP0", "MLP0@input -> L1H0.v", "MLP0@input -> L1H1.v",
                   "L1H0@eoi -> MLP1", "L1H0@answer -> MLP1", "L1H1@eoi -> MLP1", "L1H1@answer -> MLP1",
                   "embed@answer -> MLP1", "MLP1@eoi -> logits", "MLP1@answer -> logits"}


def discovery_model():
    model = zeroed_with_embeddings(DISCOVERY_CONFIG, D_P0)
    with torch.no_grad():
        a0, a1 = model.blocks[0].attn, model.blocks[1].attn
        a0.W_Q[0, ONE, 0] = SHARP  # L0H0 decoy: attends to EoI ...
        a0.W_K[0, EOI, 0] = 1.0
        a0.W_V[0, BIT, 0] = 1.0  # ... reads the bit there, writes nothing (W_O = 0)
        for i in range(N_CTX):
            a0.W_Q[1, D_P0 + i, i] = SHARP  # L0H1 decoy: previous token, writes nothing
            if i + 1 < N_CTX:
                a0.W_K[1, D_P0 + i, i + 1] = 1.0
            for h in (0, 1, 2):  # L1H0, L1H1 (the split iteration head) and the L1H2 decoy: q -> q - L
                a1.W_Q[h, D_P0 + i, i] = SHARP
                if i + L < N_CTX:
                    a1.W_K[h, D_P0 + i, i + L] = 1.0
        a0.W_V[1, BIT, 0] = 1.0
        m0 = model.blocks[0].mlp
        m0.W_in[BIT, 0] = 1.0  # MLP0: C = relu(BIT)
        m0.W_out[0, C_FEAT] = 1.0
        for h in (0, 1, 2):
            a1.W_V[h, C_FEAT, 0] = 1.0  # the iteration heads read C at x_t ...
        a1.W_O[0, 0, A] = 0.5  # ... L1H0 and L1H1 each write half of A; L1H2 writes nothing
        a1.W_O[1, 0, A] = 0.5
        plant_accumulator(model)  # MLP1: Z = BIT xor A, as in planted_model
    return model.eval()


# ---- the paper's whole circuit, for the hypotheses: EoI anchor -> position MLP -> iteration heads -> MLP ----
# Features: ONE, BIT, EOI, A, Z as above; P (one-hot position), EP (the EoI position, written by the
# anchor), R (the position to read, written by MLP0). At length L:
# - L0H0 EoI anchor: attends to EoI and copies its position into EP; L0H1 decoy: attends to EoI, W_O = 0;
# - MLP0 position MLP: neuron i = relu(P_i + EP_{L+1} - 1) writes R_{i-L} (query position i reads x_{i-L});
# - L1H0 and L1H1 split iteration head: the query R_j matches key position j (else a weaker match on the
#   task token, whose BIT is 0), each copies half of the bit read into A; L1H2 decoy: the same attention, W_O = 0;
# - MLP1 accumulator: Z = BIT xor A, as in planted_model; L0H2, L0H3, L1H3 empty.
PAPER_CONFIG = dict(n_layers=2, n_heads=4, d_model=64, d_head=16, d_mlp=16, act_fn="relu", normalization="none",
                    encoding="standard", n_ctx=N_CTX)
PAPER_P0, PAPER_EP0, PAPER_R0 = 5, 5 + N_CTX, 5 + 2 * N_CTX
PAPER_ROLES = {"eoi_anchor": ["L0H0"], "position_mlp": ["MLP0"], "iteration_head": ["L1H0", "L1H1"],
               "parity_accumulator": ["MLP1"]}
PAPER_DECOYS = {"L0H1", "L1H2"}


def paper_model():
    model = zeroed_with_embeddings(PAPER_CONFIG, PAPER_P0)
    with torch.no_grad():
        a0, a1 = model.blocks[0].attn, model.blocks[1].attn
        for h in (0, 1):  # L0H0 anchor and L0H1 decoy: attend to EoI, read its position
            a0.W_Q[h, ONE, 0] = SHARP
            a0.W_K[h, EOI, 0] = 1.0
            a0.W_V[h, PAPER_P0 : PAPER_P0 + N_CTX] = torch.eye(N_CTX)
        a0.W_O[0, :, PAPER_EP0 : PAPER_EP0 + N_CTX] = torch.eye(N_CTX)  # L0H0 writes EP; L0H1 writes nothing
        m0 = model.blocks[0].mlp
        for i in range(L + 1, N_CTX):  # MLP0: (position i, EoI at L + 1) -> read position i - L
            m0.W_in[PAPER_P0 + i, i] = 1.0
            m0.W_in[PAPER_EP0 + L + 1, i] = 1.0
            m0.b_in[i] = -1.0
            m0.W_out[i, PAPER_R0 + i - L] = 1.0
        for h in (0, 1, 2):  # L1H0, L1H1 (the split iteration head) and the L1H2 decoy
            for j in range(N_CTX):
                a1.W_Q[h, PAPER_R0 + j, j] = SHARP
                a1.W_K[h, PAPER_P0 + j, j] = 1.0
            a1.W_Q[h, ONE, 0] = SHARP / 2  # without R: the task token (bit 0), which a read target outbids
            a1.W_V[h, BIT, 0] = 1.0
        a1.W_O[0, 0, A] = 0.5
        a1.W_O[1, 0, A] = 0.5
        plant_accumulator(model)  # MLP1: Z = BIT xor A, as in planted_model
    return model.eval()


# ---- a component only the chain of thought needs: the logit target drops it, the CoT target keeps it ----
# discovery_model plus L1H3, which only at EoI (the position predicting s_1 = x_1) attends to x_1
# (elsewhere to the task token, whose BIT is 0) and copies its bit into W. The unembedding reads W
# (+2 COT_H on the digit 1) and EoI (-COT_C): at EoI the main circuit's +-GAIN alone would leave every
# s_1 = 1 wrong (GAIN + COT_H - COT_C < 0 with W mean-ablated), W puts it right. Mean-ablating L1H3
# moves the logit difference of one answer token in L by COT_H (about 2% of the whole) and breaks
# every chain with x_1 = 1; the final answer does not depend on it.
W_FEAT, COT_H, COT_C = 22, 1.0, 11.5
COT_NODES = DISCOVERY_NODES | {"L1H3@eoi"}
COT_EDGES = DISCOVERY_EDGES | {"embed@input -> L1H3.v", "L1H3@eoi -> logits"}


def cot_model():
    model = discovery_model()
    with torch.no_grad():
        a1 = model.blocks[1].attn
        a1.W_Q[3, ONE, 0] = SHARP / 2  # every query: the task token (position 0) ...
        a1.W_K[3, D_P0, 0] = 1.0
        a1.W_Q[3, EOI, 1] = SHARP  # ... but EoI's: x_1 (position 1)
        a1.W_K[3, D_P0 + 1, 1] = 1.0
        a1.W_V[3, BIT, 0] = 1.0
        a1.W_O[3, 0, W_FEAT] = 1.0
        model.unembed.W_U[W_FEAT, 1] = 2 * COT_H
        model.unembed.W_U[EOI, 1] = -COT_C
    return model.eval()
