"""Names and defaults that ``--help`` shows, importable without torch or TransformerLens.

The CLI answers ``comp X --help`` and rejects a bad argument before it imports any heavy
module, so the names it lists (tasks, encodings, ablation methods, corruptions, hypotheses,
probe targets, lengthgen backends) and the defaults it prints (``comp train``'s settings)
come from here. ``EVAL_SEED``, ``WHAT`` and ``PROBE_TARGETS`` are defined here only (the
library imports them); every other entry mirrors a registry that stays the one source of
what a name *does*, and ``tests/test_cli_startup.py`` fails when the two differ.
"""

from __future__ import annotations

EVAL_SEED = 12345  # seed of the evaluation sets, in training and in every analysis
N_SEQUENCES = 256  # sequences per length (--n) of every analysis and of comp lengthgen: one default everywhere

# comp.tasks.TASKS (plus "multi", the mixture)
TASK_NAMES = ("parity", "parity_nocot", "copy", "polynomial")

# comp.model.encodings.HELP
ENCODING_HELP = (
    "Positional encoding: a base (standard, sinusoidal, shortformer, rotary, alibi, t5, nope, prevpos), "
    "optionally + id modifiers (coupling, randomized, abacus), e.g. rotary+coupling; a bare modifier means "
    "coupling = rotary+coupling, randomized = rotary+randomized, abacus = standard+abacus. "
    "Aliases: rope=rotary, learned=standard, absolute=standard, sincos=sinusoidal."
)
# comp.lengthgen.study.DEFAULT_PES
DEFAULT_PES = "standard,rotary,alibi,nope,t5,randomized,coupling"

ABLATIONS = ("zero", "mean", "resample")  # comp.circuits.ablate.ABLATIONS
WHAT = ("heads", "mlps", "both")  # comp.circuits.components.WHAT
CORRUPTIONS = ("flip_one", "flip_random", "resample_input")  # comp.circuits.patching.CORRUPTIONS
HYPOTHESES = ("prev_token", "iteration_head", "eoi_anchor", "position_mlp", "parity_accumulator", "paper_circuit")  # comp.circuits.hypotheses
ALL_HYPOTHESES = "all"  # comp.circuits.hypotheses.ALL
MIN_SCORE = 0.5  # comp.circuits.hypotheses.Thresholds.score
LAYER_CHOICES = ("any", "paper", "early", "late")  # comp.circuits.roles.LAYER_WORDS (or indices: 0,1)
SUFFICIENCY_ABLATIONS = ("mean", "resample")  # comp.circuits.hypotheses.SUFFICIENCY_ABLATIONS
LENGTHGEN_BACKENDS = ("inline", "local", "slurm")  # comp.lengthgen.BACKENDS
CIRCUIT_LEVELS = ("nodes", "edges")  # comp.circuits.discover.LEVELS
CIRCUIT_METHODS = ("exact", "eap", "eap-ig")  # comp.circuits.discover.METHODS
CIRCUIT_ABLATIONS = ("mean", "resample")  # comp.circuits.discover.ABLATIONS
DYNAMICS_MEASURES = ("acc", "heads", "probe", "circuit")  # comp.dynamics.measures.MEASURES
FORM_THRESHOLD = 0.5  # comp.dynamics.stages.FORM_THRESHOLD

# comp.probes.TARGETS: what a probe can read, and what that means
PROBE_TARGETS: dict[str, str] = {
    "s_prev": "state before the step, s_{t-1} (undefined at t = 1)",
    "x_t": "input of the step, x_t (at answer sites: the input to read next)",
    "s_t": "state after the step, s_t (at answer sites: the token about to be written)",
    "position": "position index of the site",
    "length": "input length L of the sequence",
    "task": "task token of the sequence (for multi-task runs)",
}

# comp.config.default_of(section, name) of the settings comp train's --help shows
TRAIN_DEFAULTS: dict[tuple[str, str], object] = {
    ("model", "encoding"): "rotary", ("train", "seed"): 0, ("train", "steps"): 2000, ("train", "batch_size"): 128,
    ("train", "lr"): 3e-3, ("train", "train_lengths"): "1-16", ("train", "curriculum"): False,
    ("train", "curriculum_per_task"): False, ("train", "mix"): "even",
    ("train", "target_acc"): 0.99, ("model", "n_layers"): 2, ("model", "n_heads"): 4, ("model", "d_model"): 64,
    ("model", "d_mlp"): 0, ("model", "attn_only"): False, ("model", "n_ctx"): 512, ("task", "slack"): 0,
    ("train", "device"): "auto", ("train", "compile"): False, ("train", "wandb"): False,
}
