"""Named presets: whole recipes one flag away (``comp train parity --preset extrapolate``).

A preset is a partial config (``task``/``model``/``train`` sections) applied over comp's
defaults and under everything else: defaults < preset < ``--config`` file < named
options (``--pe``, ``--steps`` ...) < ``--set``. The run's ``config.json`` holds the
resulting settings, so a run made with a preset is the same run as one made with the same
settings spelled out (``comp lengthgen --set ...`` reuses it).

``PRESETS`` is the registry; ``comp train --help`` lists it.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

from comp.errors import CompError


@dataclass(frozen=True)
class Preset:
    """One recipe: a summary for --help, its settings, and the tasks it is meant for (empty: any)."""

    summary: str
    settings: dict = field(default_factory=dict)  # {"model": {...}, "train": {...}, "task": {...}}
    source: str = ""  # where the recipe comes from
    cot: "bool | None" = None  # True: tasks with a chain of thought only; False: answer-only tasks only


PRESETS: dict[str, Preset] = {
    "default": Preset("comp's defaults (rotary, 2 layers x 4 heads, width 64, AdamW 3e-3, batch 128, "
                      "early stop at 99%)", {}, "comp.config"),
    "extrapolate": Preset(
        "length generalization: t5+coupling with t5_max_distance=16, attn_scale=logn, attn_jitter=0.75, "
        "no early stop (all 2,000 steps)",
        {"model": {"encoding": "t5+coupling", "t5_max_distance": 16, "attn_scale": "logn", "attn_jitter": 0.75},
         "train": {"target_acc": 0.0}},
        "docs/results/lengthgen/README.md (parity with CoT: 100% at every length to 128 from training on 1-16)",
        cot=True,
    ),
    "paper": Preset(
        "the Iteration Head paper's set-up: learned absolute positions, 2 layers x 1 head, width 128, "
        "Adam 3e-4, batch 256",
        {"model": {"encoding": "standard", "n_layers": 2, "n_heads": 1, "d_model": 128, "normalization": "LN",
                   "act_fn": "gelu"},
         "train": {"lr": 3e-4, "batch_size": 256, "weight_decay": 0.0}},
        "Cabannes et al. 2024, Iteration Head (shared/notes/science.md)",
    ),
    "nocot": Preset(
        "the answer-only baseline of the length study: rotary, comp's defaults, for an answer-only task "
        "(comp train parity_nocot --preset nocot)",
        {"model": {"encoding": "rotary"}},
        "docs/results/lengthgen/README.md, section 2",
        cot=False,
    ),
}

HELP = "Named recipe under every other setting: " + "; ".join(f"{k}: {p.summary}" for k, p in PRESETS.items()) + "."


def preset_settings(name: str, task: str) -> dict:
    """A copy of preset ``name``'s settings for ``task``; a clear error for an unknown name or a task it is not for."""
    if name not in PRESETS:
        raise CompError(f"unknown preset {name!r}; choose one of: {', '.join(PRESETS)}")
    from comp.tasks import TASKS  # here, not at import: --help must not load torch

    preset = PRESETS[name]
    if preset.cot is not None and task in TASKS and TASKS[task].cot != preset.cot:
        fits = [t for t, cls in TASKS.items() if cls.cot == preset.cot]
        raise CompError(f"preset {name} is for {'chain-of-thought' if preset.cot else 'answer-only'} tasks "
                        f"({', '.join(fits)}), not {task}; e.g. comp train {fits[0]} --preset {name}")
    return copy.deepcopy(preset.settings)


def merge(base: dict, over: dict) -> dict:
    """``over`` laid on ``base`` section by section (a new dict)."""
    out = copy.deepcopy(base)
    for section, values in over.items():
        if isinstance(values, dict) and isinstance(out.get(section), dict):
            out[section].update(values)
        else:
            out[section] = copy.deepcopy(values)
    return out
