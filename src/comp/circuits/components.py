"""Components of a model: attention heads and MLPs, by name, with the hooks that reach them.

A :class:`Component` is one head (``L1H0``: layer 1, head 0) or one MLP (``MLP1``). An
intervention on it edits one TransformerLens hook: a head through its slice of
``blocks.{l}.attn.hook_z`` (``[batch, pos, head, d_head]``, before ``W_O``), an MLP
through ``blocks.{l}.hook_mlp_out`` (``[batch, pos, d_model]``).

:func:`component_outputs` splits the final residual stream into what each part wrote
(embeddings, each head's result, each layer's attention bias, each MLP): they sum to
``ln_final.hook_normalized``'s input, the basis of direct attribution.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from transformer_lens import utils

from comp.catalog import WHAT  # components ablated one at a time (kept in comp.catalog for --help)
from comp.errors import CompError


@dataclass(frozen=True)
class Component:
    """One attention head (``head`` set) or one MLP (``head is None``); sorts in model order."""

    layer: int
    head: "int | None" = None

    def __lt__(self, other: "Component") -> bool:
        def key(c: Component) -> tuple:
            return (c.layer, c.head is None, c.head or 0)

        return key(self) < key(other)

    @property
    def kind(self) -> str:
        return "mlp" if self.head is None else "head"

    @property
    def label(self) -> str:
        return f"MLP{self.layer}" if self.head is None else f"L{self.layer}H{self.head}"

    @property
    def hook(self) -> str:
        return utils.get_act_name("mlp_out" if self.head is None else "z", self.layer)

    def mask(self, n_pos: int, n_heads: int) -> torch.Tensor:
        """Where this component sits in its hook's activation, every position: a bool mask
        broadcastable against ``[pos, head, d_head]`` (heads) or ``[pos, d_model]`` (MLPs)."""
        if self.head is None:
            return torch.ones(n_pos, 1, dtype=torch.bool)  # [pos, 1]
        m = torch.zeros(n_pos, n_heads, 1, dtype=torch.bool)  # [pos, head, 1]
        m[:, self.head] = True
        return m

    def as_dict(self) -> dict:
        return {"component": self.label, "kind": self.kind, "layer": self.layer, "head": self.head}


def heads(model) -> list[Component]:
    return [Component(layer, h) for layer in range(model.cfg.n_layers) for h in range(model.cfg.n_heads)]


def mlps(model) -> list[Component]:
    return [] if model.cfg.attn_only else [Component(layer) for layer in range(model.cfg.n_layers)]


def components(model, what: str = "both") -> list[Component]:
    """The heads, the MLPs or both (``what``), in layer order."""
    if what not in WHAT:
        raise CompError(f"unknown component kind {what!r}; choose one of: {', '.join(WHAT)}")
    if what == "mlps" and model.cfg.attn_only:
        raise CompError("this model is attention-only: it has no MLPs to analyse; use --what heads")
    chosen = (heads(model) if what != "mlps" else []) + (mlps(model) if what != "heads" else [])
    return sorted(chosen)


@torch.no_grad()
def component_outputs(model, tokens: torch.Tensor) -> dict[str, torch.Tensor]:
    """What each part of the model writes into the residual stream, ``{name: [batch, pos, d_model]}``.

    Names: ``embed``, ``pos_embed`` (encodings that add positions to the stream), every
    head's result (``L0H1``: ``z @ W_O``), ``attn_bias{l}`` (``b_O``) and ``MLP{l}``.
    Their sum is the residual stream after the last block.
    """
    names = ["hook_embed", "hook_pos_embed"] + [utils.get_act_name("z", layer) for layer in range(model.cfg.n_layers)]
    names += [utils.get_act_name("mlp_out", layer) for layer in range(model.cfg.n_layers)]
    _, cache = model.run_with_cache(tokens, names_filter=lambda n: n in names)
    out = {"embed": cache["hook_embed"]}
    if "hook_pos_embed" in cache and model.cfg.positional_embedding_type == "standard":
        out["pos_embed"] = cache["hook_pos_embed"]
    for layer, block in enumerate(model.blocks):
        z = cache[utils.get_act_name("z", layer)]  # [batch, pos, head, d_head]
        result = torch.einsum("bphd,hdm->bphm", z, block.attn.W_O)  # [batch, pos, head, d_model]
        for h in range(model.cfg.n_heads):
            out[Component(layer, h).label] = result[:, :, h]
        out[f"attn_bias{layer}"] = block.attn.b_O.expand_as(out["embed"])
        if not model.cfg.attn_only:
            out[Component(layer).label] = cache[utils.get_act_name("mlp_out", layer)]
    return out
