"""Positional encodings: one registry, each entry says how positions enter the model.

TransformerLens ships learned absolute (``standard``), ``shortformer``, ``rotary`` and
``alibi``; every encoding it lacks is added here and only here, by replacing
``model.pos_embed`` or adjusting attention modules, so that TransformerLens hook names
(``hook_pos_embed``, ``blocks.0.attn.hook_pattern``, ``blocks.0.hook_resid_pre`` ...)
stay valid for all of them. An encoding that adds a component also adds a hook point.

An entry is an :class:`Encoding`: the TransformerLens ``positional_embedding_type`` it
starts from, and an ``install`` function that edits a freshly built model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

import torch
from torch import nn

from comp.errors import CompError

if TYPE_CHECKING:  # pragma: no cover
    from comp.model import CompTransformer


def _install_nothing(model: "CompTransformer") -> None:
    return None


@dataclass(frozen=True)
class Encoding:
    """How one positional encoding is built on top of a TransformerLens model."""

    name: str
    tl_type: str  # TransformerLens positional_embedding_type to build from
    summary: str  # one line for --help and the docs
    source: str  # where it comes from
    install: Callable[["CompTransformer"], None] = field(default=_install_nothing)
    learned_table: bool = False  # positions index a learned table of n_ctx rows: no longer inputs


class ZeroPosEmbed(nn.Module):
    """NoPE: a position embedding that is always zero (hook_pos_embed still fires)."""

    def __init__(self, d_model: int):
        super().__init__()
        self.d_model = d_model

    def forward(self, tokens: torch.Tensor, past_kv_pos_offset: int = 0, attention_mask=None) -> torch.Tensor:
        return tokens.new_zeros(*tokens.shape, self.d_model, dtype=torch.float32)  # [batch, pos, d_model]


def _install_nope(model: "CompTransformer") -> None:
    model.pos_embed = ZeroPosEmbed(model.cfg.d_model)


ENCODINGS: dict[str, Encoding] = {
    e.name: e
    for e in [
        Encoding(
            "standard",
            "standard",
            "learned absolute position embeddings added to the tokens",
            "GPT-2, Radford et al. 2019",
            learned_table=True,
        ),
        Encoding(
            "shortformer",
            "shortformer",
            "learned absolute positions added to queries and keys only, not the residual stream",
            "Press et al. 2021, Shortformer",
            learned_table=True,
        ),
        Encoding(
            "rotary",
            "rotary",
            "rotary position embedding: queries and keys rotated by position (relative)",
            "Su et al. 2021, RoFormer",
        ),
        Encoding(
            "alibi",
            "alibi",
            "linear attention bias by distance, one slope per head (relative)",
            "Press et al. 2022, ALiBi",
            install=_install_nope,  # TransformerLens builds an unused W_pos for alibi: drop it
        ),
        Encoding(
            "nope",
            "standard",
            "no positional encoding: only the causal mask orders tokens",
            "Kazemnejad et al. 2023",
            install=_install_nope,
        ),
    ]
}

ALIASES: dict[str, str] = {"rope": "rotary", "learned": "standard", "absolute": "standard"}


def canonical_encoding(name: str) -> str:
    """The registry name for ``name`` (aliases resolved); a clear error if unknown."""
    key = ALIASES.get(name, name)
    if key not in ENCODINGS:
        valid = ", ".join([*ENCODINGS, *(f"{a} (= {b})" for a, b in ALIASES.items())])
        raise CompError(f"unknown positional encoding {name!r}; choose one of: {valid}")
    return key


def get_encoding(name: str) -> Encoding:
    return ENCODINGS[canonical_encoding(name)]
