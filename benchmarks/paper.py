"""Training throughput against the paper's setup: a plain PyTorch transformer written the usual way.

The Iteration Head paper's code (facebookresearch/pal) trains its own small transformer
with PyTorch's fused attention. :class:`PlainTransformer` is that model as one writes it
without comp: token and learned absolute position embeddings, pre-LayerNorm blocks
(``nn.LayerNorm``, one ``nn.Linear`` for q, k, v, ``F.scaled_dot_product_attention``
causal, a GELU MLP of 4x width), a final LayerNorm and an unembedding; 2 layers, 1 head,
width 128. Its loop trains on right-padded fixed-shape batches of 256 parity sequences of
lengths 1-16 (comp's data stream, so both see the same sequences), cross-entropy on the
answer tokens (``ignore_index``), gradient clipping and ``torch.optim.AdamW`` with its
defaults. comp trains ``comp train parity --pe standard --n-heads 1 --d-model 128
--batch-size 256``. Both count real (non-padding) tokens per second after a warm-up of
as many steps, alternating, best of two.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from benchmarks.common import Options, Row, bench_config
from benchmarks.throughput import alternate, hand_written_loop
from comp.config import RunConfig
from comp.tasks import vocab

GOAL = 2.0  # comp per real token / the plain transformer


class Block(nn.Module):
    """Pre-LayerNorm attention (SDPA, causal) and GELU MLP, each added to the residual stream."""

    def __init__(self, d_model: int, n_heads: int):
        super().__init__()
        self.n_heads = n_heads
        self.ln1, self.ln2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.out = nn.Linear(d_model, d_model)
        self.mlp = nn.Sequential(nn.Linear(d_model, 4 * d_model), nn.GELU(), nn.Linear(4 * d_model, d_model))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, p, d = x.shape  # [batch, pos, d_model]
        q, k, v = self.qkv(self.ln1(x)).view(b, p, 3, self.n_heads, d // self.n_heads).permute(2, 0, 3, 1, 4)
        z = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # [batch, head, pos, d_head]
        x = x + self.out(z.transpose(1, 2).reshape(b, p, d))
        return x + self.mlp(self.ln2(x))


class PlainTransformer(nn.Module):
    """Embeddings, ``n_layers`` :class:`Block`, final LayerNorm, unembedding."""

    def __init__(self, d_vocab: int, n_ctx: int, d_model: int = 128, n_layers: int = 2, n_heads: int = 1):
        super().__init__()
        self.embed = nn.Embedding(d_vocab, d_model)
        self.pos = nn.Embedding(n_ctx, d_model)
        self.blocks = nn.ModuleList(Block(d_model, n_heads) for _ in range(n_layers))
        self.ln_f = nn.LayerNorm(d_model)
        self.unembed = nn.Linear(d_model, d_vocab)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.embed(tokens) + self.pos(torch.arange(tokens.shape[1], device=tokens.device))  # [batch, pos, d_model]
        for block in self.blocks:
            x = block(x)
        return self.unembed(self.ln_f(x))  # [batch, pos, d_vocab]


def plain_loop(cfg: RunConfig, device: torch.device) -> float:
    """Real tokens/s of the plain transformer (right-padded batches, torch's default AdamW weight decay)."""
    t, m = cfg.train, cfg.model
    torch.manual_seed(t.seed)
    model = PlainTransformer(vocab.D_VOCAB, m.n_ctx, m.d_model, m.n_layers, m.n_heads).to(device)
    return hand_written_loop(model, cfg, device, weight_decay=0.01)


def paper_config(opts: Options) -> RunConfig:
    """``comp train parity --pe standard --n-heads 1 --d-model 128 --batch-size 256`` for timing."""
    d_model, batch, steps = (16, 8, 2) if opts.quick else (128, 256, 10 if opts.device == "cpu" else 200)
    cfg = bench_config(opts, d_model, batch, steps, lengths="1-3" if opts.quick else "1-16")
    cfg.model.n_heads, cfg.model.encoding = 1, "standard"
    return cfg


def bench(opts: Options) -> list[Row]:
    cfg = paper_config(opts)
    plain, ours = alternate(cfg, opts, plain_loop)
    ratio = max(ours) / max(plain)
    t = cfg.train
    return [
        Row(
            "paper",
            f"train real tokens/s, 2L 1 head d{cfg.model.d_model} batch {t.batch_size}, standard positions"
            f"{' +compile' if opts.compile else ''}: comp / plain PyTorch transformer (SDPA, padded batches)",
            comp=max(ours),
            baseline=max(plain),
            ratio=ratio,
            goal=f">= {GOAL:g}",
            met=ratio >= GOAL,
            note=f"{t.log_every} timed steps after {t.log_every} warm-up, best of {len(ours)}",
            extra={"comp_runs": ours, "plain_runs": plain},
        )
    ]
