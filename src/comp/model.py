"""Model building: :class:`ModelConfig` -> TransformerLens ``HookedTransformer``.

The model is a :class:`CompTransformer`, a ``HookedTransformer`` whose positional
encoding comes from :mod:`comp.encodings`; everything else (hook names,
``run_with_cache``, ``transformer_lens.patching``) is TransformerLens's own.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import torch
from transformer_lens import HookedTransformer, HookedTransformerConfig

from comp.encodings import canonical_encoding, get_encoding
from comp.errors import CompError
from comp.tasks import vocab

NORMALIZATIONS = {"LN": "LN", "RMS": "RMS", "none": None}
ACTIVATIONS = ("gelu", "relu", "silu", "gelu_new")


@dataclass
class ModelConfig:
    """Architecture of one model. Saved in every run's config.json."""

    n_layers: int = 2  # transformer blocks; the iteration-head circuit needs 2
    n_heads: int = 4  # attention heads per layer
    d_model: int = 64  # residual stream width
    d_head: int = 0  # per-head width; 0 means d_model // n_heads
    d_mlp: int = 0  # MLP hidden width; 0 means 4 * d_model
    act_fn: str = "gelu"  # MLP activation: gelu | relu | silu | gelu_new
    normalization: str = "LN"  # pre-norm type: LN | RMS | none
    attn_only: bool = False  # drop the MLPs
    encoding: str = "rotary"  # positional encoding, a key of comp.encodings.ENCODINGS
    n_ctx: int = 512  # longest sequence (tokens); learned position tables have this many rows
    rotary_base: int = 10000  # rotary frequency base (rotary encodings only)

    def __post_init__(self) -> None:
        self.encoding = canonical_encoding(self.encoding)
        if self.d_head == 0:
            if self.d_model % self.n_heads:
                raise CompError(
                    f"d_model {self.d_model} is not divisible by n_heads {self.n_heads}; set --d-head or change one"
                )
            self.d_head = self.d_model // self.n_heads
        if self.d_mlp == 0:
            self.d_mlp = 4 * self.d_model
        if self.normalization not in NORMALIZATIONS:
            raise CompError(f"unknown normalization {self.normalization!r}; choose one of: {', '.join(NORMALIZATIONS)}")
        if self.act_fn not in ACTIVATIONS:
            raise CompError(f"unknown activation {self.act_fn!r}; choose one of: {', '.join(ACTIVATIONS)}")
        for name in ("n_layers", "n_heads", "d_model", "n_ctx"):
            if getattr(self, name) < 1:
                raise CompError(f"{name} must be at least 1, got {getattr(self, name)}")

    @classmethod
    def from_dict(cls, data: dict) -> "ModelConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise CompError(f"unknown model config keys {unknown}; valid keys: {', '.join(sorted(known))}")
        return cls(**data)

    def to_dict(self) -> dict:
        return asdict(self)

    def tl_config(self) -> HookedTransformerConfig:
        """The TransformerLens config this model is built from."""
        enc = get_encoding(self.encoding)
        return HookedTransformerConfig(
            n_layers=self.n_layers,
            d_model=self.d_model,
            n_ctx=self.n_ctx,
            d_head=self.d_head,
            n_heads=self.n_heads,
            d_mlp=None if self.attn_only else self.d_mlp,
            d_vocab=vocab.D_VOCAB,
            act_fn=self.act_fn,
            normalization_type=NORMALIZATIONS[self.normalization],
            attn_only=self.attn_only,
            positional_embedding_type=enc.tl_type,
            rotary_dim=self.d_head if enc.tl_type == "rotary" else None,
            rotary_base=self.rotary_base,
            default_prepend_bos=False,
            original_architecture="comp",
            device="cpu",
        )


class CompTransformer(HookedTransformer):
    """A ``HookedTransformer`` with comp's positional encoding installed.

    ``model.model_cfg`` is the :class:`ModelConfig` it was built from.
    """

    def __init__(self, model_cfg: ModelConfig):
        super().__init__(model_cfg.tl_config(), move_to_device=False)
        self.model_cfg = model_cfg
        get_encoding(model_cfg.encoding).install(self)
        self.setup()  # register hook points the encoding added


def build_model(cfg: ModelConfig, seed: int = 0, device: "str | torch.device" = "cpu") -> CompTransformer:
    """Build a freshly initialised model; the same seed gives the same weights.

    The global torch RNG is left as it was.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = CompTransformer(cfg)
    return model.to(device, print_details=False)


def max_length(cfg: ModelConfig, seq_len: int) -> None:
    """Raise a clear error if a sequence of ``seq_len`` tokens cannot fit the model."""
    if seq_len > cfg.n_ctx and get_encoding(cfg.encoding).learned_table:
        raise CompError(
            f"sequences of {seq_len} tokens exceed n_ctx={cfg.n_ctx} of this {cfg.encoding} model, whose learned "
            f"position table has no rows past it; evaluate shorter lengths or train with --n-ctx {seq_len}"
        )


def with_context(cfg: ModelConfig, seq_len: int) -> ModelConfig:
    """``cfg`` widened to hold ``seq_len`` tokens (encodings without a learned table only)."""
    max_length(cfg, seq_len)
    if seq_len <= cfg.n_ctx:
        return cfg
    return ModelConfig(**{**cfg.to_dict(), "n_ctx": seq_len})


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
