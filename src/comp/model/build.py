"""Model building: :class:`~comp.model.config.ModelConfig` -> TransformerLens ``HookedTransformer``.

The model is a :class:`CompTransformer`, a ``HookedTransformer`` whose positional
encoding comes from :mod:`comp.model.encodings`; everything else (hook names,
``run_with_cache``, ``transformer_lens.patching``) is TransformerLens's own.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from transformer_lens import HookedTransformer

from comp.errors import CompError
from comp.model.attention_scale import Jitter, draw_jitter, install_jitter, install_logn_scale
from comp.model.config import ModelConfig
from comp.model.determinism import install_lookup_embed
from comp.model.encodings.positions import PositionState


class CompTransformer(HookedTransformer):
    """A ``HookedTransformer`` with comp's positional encoding installed.

    ``model.model_cfg`` is the :class:`ModelConfig` it was built from, ``model.encoding``
    its :class:`~comp.model.encodings.EncodingSpec`. Encodings that read position ids get them
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
        install_lookup_embed(self.embed)  # W_E[tokens] with a backward reproducible at any thread count
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

    @contextlib.contextmanager
    def rows(self, rows: torch.Tensor, width: int) -> Iterator[None]:
        """Inside :meth:`sampled_positions`: forwards on ``tokens[rows, :width]`` of its batch
        read those rows' drawn ids and jitter factors (length buckets, comp.train.buckets)."""
        pinned, factor = self._pinned, self.jitter.factor
        self._pinned = None if pinned is None else pinned[rows, :width]
        self.jitter.factor = None if factor is None else factor[rows]
        try:
            yield
        finally:
            self._pinned, self.jitter.factor = pinned, factor

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

    The global torch RNG is left as it was. A model too large for the memory is refused
    (:func:`comp.resources.check_fits`) before any weight is allocated.
    """
    check_model_size(cfg, device)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = CompTransformer(cfg)
    return model.to(device, print_details=False)


def check_model_size(cfg: ModelConfig, device: "str | torch.device" = "cpu") -> None:
    """Refuse (:func:`comp.resources.check_fits`) a model whose weights alone exceed the memory."""
    from comp.resources import check_fits

    d_mlp = 0 if cfg.attn_only else (cfg.d_mlp or 4 * cfg.d_model)
    params = cfg.n_layers * (4 * cfg.n_heads * (cfg.d_head or cfg.d_model // cfg.n_heads) + 2 * d_mlp) * cfg.d_model
    check_fits(params * 4, device, f"a model of {params:,} weights", "use a smaller --n-layers, --d-model or --d-mlp")


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
