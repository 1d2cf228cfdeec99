"""The architecture of one model: :class:`ModelConfig`, saved in every run's ``config.json``.

Its encoding name is parsed once, when the config is made, into :attr:`ModelConfig.spec`
(:class:`~comp.model.encodings.EncodingSpec`); each encoding checks the settings it needs.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from transformer_lens import HookedTransformerConfig

from comp.errors import CompError
from comp.model.attention_scale import ATTN_SCALES
from comp.model.encodings import EncodingSpec, parse_encoding
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
    encoding: str = "rotary"  # positional encoding: a base of comp.model.encodings.ENCODINGS [+ id modifiers]
    n_ctx: int = 512  # longest sequence (tokens); learned position tables have this many rows
    rotary_base: int = 10000  # rotary frequency base (rotary encodings only)
    max_position: int = 1024  # randomized/abacus: training ids lie in 0..max_position-1; bounds eval lengths
    t5_buckets: int = 32  # t5: buckets of relative distance, each with a learned bias per head
    t5_max_distance: int = 128  # t5: distances from here on share the last bucket
    attn_scale: str = "none"  # attention temperature: none | logn (scalable softmax, see comp.model.attention_scale)
    attn_jitter: float = 0.0  # training only: each sequence's attention logits times a factor from [1 - this, 1]

    def __post_init__(self) -> None:
        self._spec = parse_encoding(self.encoding)  # the one parse of the encoding name
        self.encoding = self._spec.name  # canonical
        for name in ("n_layers", "n_heads", "d_model", "n_ctx", "max_position"):
            if getattr(self, name) < 1:
                raise CompError(f"{name} must be at least 1, got {getattr(self, name)}")
        for name in ("d_head", "d_mlp"):
            if getattr(self, name) < 0:
                raise CompError(f"{name} must be at least 0 (0: the default), got {getattr(self, name)}")
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
        if self.attn_scale not in ATTN_SCALES:
            raise CompError(f"unknown attn_scale {self.attn_scale!r}; choose one of: {', '.join(ATTN_SCALES)}")
        if not 0.0 <= self.attn_jitter < 1.0:
            raise CompError(f"attn_jitter must lie in [0, 1) (0: off; 0.5: factors from 0.5 to 1), got {self.attn_jitter}")
        self._spec.check(self)  # the encoding's own settings (t5 buckets, sinusoidal width ...)

    @property
    def spec(self) -> EncodingSpec:
        """The encoding, parsed when the config was made (again only if ``encoding`` was reassigned)."""
        if self._spec.name != self.encoding:
            self._spec = parse_encoding(self.encoding)
        return self._spec

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
        enc = self.spec
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
