"""Model building: :class:`ModelConfig` -> TransformerLens ``HookedTransformer``.

The model is a :class:`CompTransformer`, a ``HookedTransformer`` whose positional
encoding comes from :mod:`comp.encodings`; everything else (hook names,
``run_with_cache``, ``transformer_lens.patching``) is TransformerLens's own.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import asdict, dataclass, fields

import torch
from transformer_lens import HookedTransformer, HookedTransformerConfig

from comp.attention_scale import ATTN_SCALES, Jitter, draw_jitter, install_jitter, install_logn_scale
from comp.encodings import EncodingSpec, parse_encoding
from comp.encodings.positions import PositionState
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
    encoding: str = "rotary"  # positional encoding: a base of comp.encodings.ENCODINGS [+ id modifiers]
    n_ctx: int = 512  # longest sequence (tokens); learned position tables have this many rows
    rotary_base: int = 10000  # rotary frequency base (rotary encodings only)
    max_position: int = 1024  # randomized/abacus: training ids lie in 0..max_position-1; bounds eval lengths
    t5_buckets: int = 32  # t5: buckets of relative distance, each with a learned bias per head
    t5_max_distance: int = 128  # t5: distances from here on share the last bucket
    attn_scale: str = "none"  # attention temperature: none | logn (scalable softmax, see comp.attention_scale)
    attn_jitter: float = 0.0  # training only: each sequence's attention logits times a factor from [1 - this, 1]

    def __post_init__(self) -> None:
        self._spec = parse_encoding(self.encoding)  # the one parse of the encoding name
        self.encoding = self._spec.name  # canonical
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
        for name in ("n_layers", "n_heads", "d_model", "n_ctx", "max_position"):
            if getattr(self, name) < 1:
                raise CompError(f"{name} must be at least 1, got {getattr(self, name)}")
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


class CompTransformer(HookedTransformer):
    """A ``HookedTransformer`` with comp's positional encoding installed.

    ``model.model_cfg`` is the :class:`ModelConfig` it was built from, ``model.encoding``
    its :class:`~comp.encodings.EncodingSpec`. Encodings that read position ids get them
    here: each forward computes the ids of its tokens (:meth:`position_ids`) into
    ``model.positions``, where the position modules read them. With a key-value cache,
    the cache keeps the tokens seen so far, so a decoded token gets the id it would
    have in a full forward. In training mode, randomized and abacus ids are drawn from
    the generator given to :meth:`sampled_positions` (the training data stream), or
    else from torch's global generator, like dropout. :meth:`use_position_ids` sets ids
    by hand (analyses, tests).
    """

    def __init__(self, model_cfg: ModelConfig):
        super().__init__(model_cfg.tl_config(), move_to_device=False)
        self.model_cfg = model_cfg
        self.encoding = model_cfg.spec
        self.positions = PositionState(natural_fallback=not self.encoding.coupling)
        self._pinned: torch.Tensor | None = None  # [batch, pos] ids set by use_position_ids
        self.encoding.install(self)
        if model_cfg.attn_scale == "logn":
            install_logn_scale(self)
        self.jitter = Jitter()
        if model_cfg.attn_jitter > 0:
            install_jitter(self, self.jitter)
        self.setup()  # register hook points the encoding added

    def position_ids(self, tokens: torch.Tensor, gen: "torch.Generator | None" = None) -> torch.Tensor:
        """[batch, pos] position ids of ``tokens`` (random only in training mode, for random encodings)."""
        return self.encoding.position_ids(tokens, self.model_cfg.max_position, self.training, gen)

    @contextlib.contextmanager
    def use_position_ids(self, ids: torch.Tensor) -> Iterator[None]:
        """Forwards inside use ``ids`` [batch, pos] as position ids; with a key-value cache,
        ``ids`` covers the whole sequence being decoded and each step reads its prefix."""
        if not self.encoding.uses_ids:
            raise CompError(f"{self.encoding.name} uses TransformerLens's token indices, not position ids; "
                            "pick an encoding with an id modifier (e.g. +randomized) to set ids")
        self._pinned = ids
        try:
            yield
        finally:
            self._pinned = None

    @contextlib.contextmanager
    def sampled_positions(self, tokens: torch.Tensor, gen: torch.Generator) -> Iterator[None]:
        """Training: forwards on ``tokens`` inside use ids drawn from ``gen`` (random encodings
        only), then attention temperature factors drawn from ``gen`` (``attn_jitter`` only)."""
        if not self.training:
            yield
            return
        with contextlib.ExitStack() as stack:
            if self.encoding.random:
                stack.enter_context(self.use_position_ids(self.position_ids(tokens, gen)))
            if self.model_cfg.attn_jitter > 0:
                stack.enter_context(jittered(self, draw_jitter(tokens.shape[0], self.model_cfg.attn_jitter, gen,
                                                               tokens.device)))
            yield

    def _forward_ids(self, tokens: torch.Tensor, past_kv_cache=None) -> torch.Tensor:
        """Ids of every token the attention will see in this forward (cached ones first)."""
        if tokens.dim() == 1:
            tokens = tokens[None]
        if past_kv_cache is not None:  # decoding: ids of the whole history
            offset = self.get_pos_offset(past_kv_cache, tokens.shape[0])
            if self._pinned is not None:  # ids of the full sequence, pinned by the decoder
                return self._pinned[:, : offset + tokens.shape[1]].to(tokens.device)
            seen = getattr(past_kv_cache, "comp_tokens", tokens[:, :0])
            if seen.shape[1] != offset:
                raise CompError("this key-value cache holds tokens this model did not record; "
                                "start decoding from a fresh TransformerLensKeyValueCache")
            tokens = torch.cat([seen, tokens.to(seen.device)], dim=1)
            if not past_kv_cache.frozen:
                past_kv_cache.comp_tokens = tokens
            return self.encoding.position_ids(tokens, self.model_cfg.max_position)
        if self._pinned is not None:
            if self._pinned.shape != tokens.shape:
                raise CompError(f"position ids have shape {tuple(self._pinned.shape)}, tokens "
                                f"{tuple(tokens.shape)}; give one id per token")
            return self._pinned.to(tokens.device)
        return self.position_ids(tokens)

    def input_to_embed(self, input, **kwargs):
        if self.encoding.uses_ids:
            self.positions.ids = self._forward_ids(input, kwargs.get("past_kv_cache"))
        return super().input_to_embed(input, **kwargs)

    def forward(self, input, *args, **kwargs):
        try:
            if self.encoding.uses_ids and kwargs.get("start_at_layer") is not None:
                cache = kwargs.get("past_kv_cache")
                if self._pinned is not None:  # ids of every position seen so far, cached ones first
                    seen = self.get_pos_offset(cache, input.shape[0]) + input.shape[1]
                    self.positions.ids = self._pinned[:, :seen].to(input.device)
                elif kwargs.get("tokens") is not None:
                    self.positions.ids = self._forward_ids(kwargs["tokens"], cache)
            return super().forward(input, *args, **kwargs)
        finally:
            self.positions.ids = None  # never let a later forward read stale ids


def pinned_positions(model, ids: "torch.Tensor | None"):
    """``model.use_position_ids(ids)`` when the model reads ids and ``ids`` is given, else a no-op."""
    if ids is None or not getattr(getattr(model, "encoding", None), "uses_ids", False):
        return contextlib.nullcontext()
    return model.use_position_ids(ids)


def jittered(model, factor: "torch.Tensor | None"):
    """Forwards inside multiply each sequence's attention logits by ``factor`` [batch]
    (``attn_jitter`` models; a no-op when ``factor`` is None)."""
    if factor is None:
        return contextlib.nullcontext()
    stack = contextlib.ExitStack()
    model.jitter.factor = factor
    stack.callback(setattr, model.jitter, "factor", None)
    return stack


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
    limit, bound = cfg.spec.id_limit(cfg)
    if limit is None or seq_len <= limit:
        return
    if bound == "n_ctx":
        raise CompError(
            f"sequences of {seq_len} tokens exceed n_ctx={cfg.n_ctx} of this {cfg.encoding} model, whose learned "
            f"position table has no rows past it; evaluate shorter lengths or train with --n-ctx {seq_len}"
        )
    raise CompError(
        f"sequences of {seq_len} tokens need more position ids than max_position={cfg.max_position} of this "
        f"{cfg.encoding} model, whose training drew ids below it; evaluate shorter lengths or train with "
        f"--set model.max_position={seq_len}"
    )


def with_context(cfg: ModelConfig, seq_len: int) -> ModelConfig:
    """``cfg`` widened to hold ``seq_len`` tokens (unless a learned table or the id range bounds it)."""
    max_length(cfg, seq_len)
    if seq_len <= cfg.n_ctx:
        return cfg
    return ModelConfig(**{**cfg.to_dict(), "n_ctx": seq_len})


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def resolve_device(name: str) -> torch.device:
    """The torch device of a ``--device`` name (``auto``: CUDA when there is one)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise CompError(f"device {name!r} asked for but CUDA is not available; use --device cpu or auto")
    try:
        return torch.device(name)
    except RuntimeError:
        raise CompError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:N") from None
