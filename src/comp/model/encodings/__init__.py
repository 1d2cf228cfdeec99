"""Positional encodings: one registry, each entry says how positions enter the model.

An encoding name is a *base*, optionally joined with *id modifiers* by ``+``::

    rotary    rotary+coupling    rotary+coupling+randomized    standard+abacus

A base decides how position ids become part of the model (a learned table, sinusoids,
rotations of queries and keys, an attention bias, nothing). An id modifier decides
which ids tokens get (:mod:`comp.model.encodings.positions`): coupled to the task layout,
randomized during training, or shifted by a random offset during training. A bare
modifier means its default base (``coupling`` is ``rotary+coupling``). The canonical
name (base first, modifiers in registry order) is what ``config.json`` stores.

TransformerLens ships learned absolute (``standard``), ``shortformer``, ``rotary`` and
``alibi``; these are used as TransformerLens builds them when no modifier is given.
Everything else is installed here, by replacing ``model.pos_embed`` or turning the
attention modules into :class:`~comp.model.encodings.modules.PositionedAttention`, so that
TransformerLens hook names (``hook_pos_embed``, ``blocks.0.attn.hook_pattern``,
``blocks.0.hook_resid_pre`` ...) stay valid for all of them; an encoding that adds a
component adds a hook point (``blocks.L.attn.hook_t5_bias``, ``pos_embed.hook_prev_pos``).
docs/encodings.md describes each entry and its source.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import torch

from comp.errors import CompError
from comp.model.encodings import positions as P
from comp.model.encodings.modules import (
    LearnedPosEmbed,
    PositionedAttention,
    PrevPosEmbed,
    SinusoidalPosEmbed,
    ZeroPosEmbed,
)
from comp.tasks import vocab

if TYPE_CHECKING:  # pragma: no cover
    from comp.model.build import CompTransformer
    from comp.model.config import ModelConfig


@dataclass(frozen=True)
class Encoding:
    """One registry entry: a base encoding or an id modifier."""

    name: str
    summary: str  # one line for --help and the docs
    source: str  # where it comes from
    kind: Literal["base", "ids"] = "base"  # "base": how ids enter the model | "ids": which ids tokens get
    tl_type: str = "standard"  # bases: TransformerLens positional_embedding_type to build from
    install: Callable[["CompTransformer", "EncodingSpec"], None] | None = None  # bases: edit a built model
    check: Callable[["ModelConfig", "EncodingSpec"], None] | None = None  # bases: refuse settings it cannot use
    compared: int = 0  # place in comp lengthgen's default comparison (0: not in it)
    learned_table: bool = False  # bases: ids index a learned table with a fixed number of rows
    reads_ids: bool = False  # bases: comp computes ids for it even without a modifier
    takes: tuple[str, ...] = ()  # bases: the id modifiers it combines with
    default_base: str = ""  # modifiers: the base a bare name means


# ---- installers: each edits a freshly built model of its base ---------------------------
def _zero(model: "CompTransformer") -> None:
    model.pos_embed = ZeroPosEmbed(model.cfg.d_model)


def _attention(model: "CompTransformer", **kwargs) -> None:
    for block in model.blocks:
        PositionedAttention.adopt(block.attn, model.positions, **kwargs)


def _install_learned(model: "CompTransformer", spec: "EncodingSpec") -> None:
    if spec.modifiers:  # TransformerLens's table is read by token index: read by id instead
        cfg = model.model_cfg
        model.pos_embed = LearnedPosEmbed(spec.table_rows(cfg), cfg.d_model, model.positions, model.cfg.initializer_range)


def _install_sinusoidal(model: "CompTransformer", spec: "EncodingSpec") -> None:
    model.pos_embed = SinusoidalPosEmbed(model.cfg.d_model, model.cfg.n_ctx, model.positions)


def _install_prevpos(model: "CompTransformer", spec: "EncodingSpec") -> None:
    cfg = model.model_cfg
    model.pos_embed = PrevPosEmbed(spec.table_rows(cfg), cfg.d_model, model.positions, model.cfg.initializer_range)


def _install_rotary(model: "CompTransformer", spec: "EncodingSpec") -> None:
    if spec.modifiers:
        _attention(model, rotary_rows=spec.table_rows(model.model_cfg))


def _install_alibi(model: "CompTransformer", spec: "EncodingSpec") -> None:
    _zero(model)  # TransformerLens builds an unused W_pos for alibi: drop it
    if spec.modifiers:
        _attention(model, bias="alibi")


def _install_t5(model: "CompTransformer", spec: "EncodingSpec") -> None:
    _zero(model)
    cfg = model.model_cfg
    _attention(model, bias="t5", t5_buckets=cfg.t5_buckets, t5_max_distance=cfg.t5_max_distance,
               t5_bidirectional=spec.coupling)


def _install_nope(model: "CompTransformer", spec: "EncodingSpec") -> None:
    _zero(model)


# ---- checks: settings an encoding cannot use, refused when the config is made -------------
def _check_sinusoidal(cfg: "ModelConfig", spec: "EncodingSpec") -> None:
    if cfg.d_model % 2:
        raise CompError(f"sinusoidal positions pair sines and cosines: d_model must be even, got {cfg.d_model}")


def _check_t5(cfg: "ModelConfig", spec: "EncodingSpec") -> None:
    exact = cfg.t5_buckets // (4 if spec.coupling else 2)  # distances with a bucket each (per direction)
    if cfg.t5_buckets < 4 or cfg.t5_buckets % 4 or cfg.t5_max_distance <= exact:
        raise CompError(
            f"t5_buckets must be a multiple of 4, and t5_max_distance above the {exact} exact distances "
            f"(t5_buckets/{2 if exact * 2 == cfg.t5_buckets else 4}); got {cfg.t5_buckets} and {cfg.t5_max_distance}"
        )


ABSOLUTE_MODS = ("coupling", "randomized", "abacus")
RELATIVE_MODS = ("coupling", "randomized")  # a common offset (abacus) is invisible to relative encodings

ENCODINGS: dict[str, Encoding] = {
    e.name: e
    for e in [
        Encoding("standard", "learned absolute position embeddings added to the tokens", "GPT-2, Radford et al. 2019",
                 install=_install_learned, learned_table=True, takes=ABSOLUTE_MODS, compared=1),
        Encoding("sinusoidal", "fixed sinusoidal position vectors added to the tokens", "Vaswani et al. 2017",
                 install=_install_sinusoidal, reads_ids=True, takes=ABSOLUTE_MODS, check=_check_sinusoidal),
        Encoding("shortformer", "learned absolute positions added to queries and keys only, not the residual stream",
                 "Press et al. 2021, Shortformer", tl_type="shortformer", install=_install_learned,
                 learned_table=True, takes=ABSOLUTE_MODS),
        Encoding("rotary", "rotary position embedding: queries and keys rotated by position (relative)",
                 "Su et al. 2021, RoFormer", tl_type="rotary", install=_install_rotary, takes=RELATIVE_MODS,
                 compared=2),
        Encoding("alibi", "linear attention bias by distance, one slope per head (relative)", "Press et al. 2022, ALiBi",
                 tl_type="alibi", install=_install_alibi, takes=RELATIVE_MODS, compared=3),
        Encoding("t5", "learned attention bias per head and bucket of relative distance", "Raffel et al. 2020, T5",
                 install=_install_t5, reads_ids=True, takes=RELATIVE_MODS, check=_check_t5, compared=5),
        Encoding("nope", "no positional encoding: only the causal mask orders tokens", "Kazemnejad et al. 2023",
                 install=_install_nope, compared=4),
        Encoding("prevpos", "a learned position table read at each token's id and at the previous token's id, "
                 "concatenated and projected", "comp's original plan (previous-token heads made easy)",
                 install=_install_prevpos, learned_table=True, reads_ids=True, takes=ABSOLUTE_MODS),
        Encoding("coupling", "answer token s_t shares the position id of input x_t; EoI shares id 0 as s_0",
                 "Cho et al. 2024, Position Coupling", kind="ids", default_base="rotary", compared=7),
        Encoding("randomized", "ids: a sorted random subset of 0..max_position-1 (fresh per row in training, fixed per K at evaluation)",
                 "Ruoss et al. 2023, Randomized Positional Encodings", kind="ids", default_base="rotary", compared=6),
        Encoding("abacus", "training ids shifted by a random offset per sequence; evaluation: no offset",
                 "McLeish et al. 2024, Abacus Embeddings", kind="ids", default_base="standard"),
    ]
}

ALIASES: dict[str, str] = {"rope": "rotary", "learned": "standard", "absolute": "standard", "sincos": "sinusoidal"}
BASES = [n for n, e in ENCODINGS.items() if e.kind == "base"]
MODIFIERS = [n for n, e in ENCODINGS.items() if e.kind == "ids"]
COMPARED = sorted((n for n, e in ENCODINGS.items() if e.compared), key=lambda n: ENCODINGS[n].compared)


def _combinations() -> str:
    return "; ".join(f"{b} + {'/'.join(ENCODINGS[b].takes) or 'nothing'}" for b in BASES)


HELP = (
    f"Positional encoding: a base ({', '.join(BASES)}), optionally + id modifiers ({', '.join(MODIFIERS)}), "
    "e.g. rotary+coupling; a bare modifier means "
    + ", ".join(f"{m} = {ENCODINGS[m].default_base}+{m}" for m in MODIFIERS)
    + f". Aliases: {', '.join(f'{a}={b}' for a, b in ALIASES.items())}."
)


@dataclass(frozen=True)
class EncodingSpec:
    """A resolved encoding name: one base and its id modifiers."""

    base: Encoding
    modifiers: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return "+".join([self.base.name, *self.modifiers])

    @property
    def coupling(self) -> bool:
        return "coupling" in self.modifiers

    @property
    def random(self) -> bool:
        """Whether training draws random ids (randomized or abacus)."""
        return "randomized" in self.modifiers or "abacus" in self.modifiers

    @property
    def uses_ids(self) -> bool:
        """Whether the model computes position ids itself (else TransformerLens uses token indices)."""
        return bool(self.modifiers) or self.base.reads_ids

    @property
    def learned_table(self) -> bool:
        return self.base.learned_table

    @property
    def tl_type(self) -> str:
        # ALiBi from ids is comp's bias on a position-free residual stream
        return "standard" if (self.base.name == "alibi" and self.modifiers) else self.base.tl_type

    def install(self, model: "CompTransformer") -> None:
        self.base.install(model, self)

    def check(self, cfg: "ModelConfig") -> None:
        """Refuse model settings this encoding cannot use (a clear :class:`CompError`)."""
        if self.base.check is not None:
            self.base.check(cfg, self)

    def table_rows(self, cfg: "ModelConfig") -> int:
        """Rows of a position table (learned or rotary): every id the model can see."""
        return max(cfg.n_ctx, cfg.max_position) if self.random else cfg.n_ctx

    def id_limit(self, cfg: "ModelConfig") -> tuple[int | None, str]:
        """The most tokens a sequence may have, and what bounds it (``None``: no bound)."""
        if self.random:
            return cfg.max_position, "max_position"
        if self.learned_table:
            return cfg.n_ctx, "n_ctx"
        return None, ""

    def position_ids(
        self, tokens: torch.Tensor, max_position: int, train: bool = False, gen: "torch.Generator | None" = None
    ) -> torch.Tensor:
        """[batch, pos] ids of ``tokens``: the layout's, randomized only when ``train``."""
        ids = P.coupled_ids(tokens) if self.coupling else P.natural_ids(tokens)
        real = tokens != vocab.PAD
        if "randomized" in self.modifiers:
            return P.randomize(ids, real, max_position, gen) if train else P.fixed_randomize(ids, real, max_position)
        if train and self.random:
            return P.shift(ids, real, max_position, gen)
        return ids


def parse_encoding(name: str) -> EncodingSpec:
    """Resolve ``name`` (aliases, bare modifiers, any order) into an :class:`EncodingSpec`.

    A :class:`CompError` names what is wrong and lists what is allowed.
    """
    parts = [ALIASES.get(p.strip(), p.strip()) for p in str(name).split("+")]
    unknown = [p for p in parts if p not in ENCODINGS]
    if unknown:
        valid = ", ".join([*ENCODINGS, *(f"{a} (= {b})" for a, b in ALIASES.items())])
        what = repr(unknown[0]) if unknown[0] else f"{name!r} (an empty part)"
        raise CompError(
            f"unknown positional encoding {what}; choose one of: {valid}; "
            "combine a base with modifiers by +, e.g. rotary+coupling"
        )
    if len(set(parts)) < len(parts):
        raise CompError(f"positional encoding {name!r} names a part twice; name each part once")
    bases = [p for p in parts if ENCODINGS[p].kind == "base"]
    mods = [p for p in parts if ENCODINGS[p].kind == "ids"]
    if len(bases) > 1:
        raise CompError(f"positional encoding {name!r} combines two bases ({' and '.join(bases)}); "
                        f"use one base plus modifiers: {_combinations()}")
    if bases:
        base = ENCODINGS[bases[0]]
    else:  # bare modifiers: the first default base that takes them all
        defaults = [ENCODINGS[ENCODINGS[m].default_base] for m in mods]
        base = next((b for b in defaults if set(mods) <= set(b.takes)), defaults[0])
    if "randomized" in mods and "abacus" in mods:
        raise CompError(f"positional encoding {name!r} uses randomized and abacus, which both randomize training ids; "
                        "pick one")
    for m in mods:
        if m not in base.takes:
            raise CompError(f"positional encoding {name!r}: {base.name} does not combine with {m}; "
                            f"allowed: {_combinations()}")
    return EncodingSpec(base, tuple(m for m in MODIFIERS if m in mods))


def canonical_encoding(name: str) -> str:
    """The canonical name of ``name`` (aliases resolved, base first); a clear error if invalid."""
    return parse_encoding(name).name
