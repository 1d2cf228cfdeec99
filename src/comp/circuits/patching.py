"""Activation patching, batched: clean activations patched into a corrupted run, many per pass.

The method is TransformerLens's (``transformer_lens.patching``): run a clean input and a
corrupted one; for each site (an activation at one layer, position and maybe head), run
the corrupted input with that site's clean activation patched in, and measure how far the
output moves back to the clean answer. As there, one generic routine
(:func:`generic_activation_patch`) does it all and ``partial`` specialises it
(:data:`patch_resid_pre`, :data:`patch_head_out_by_pos`, :data:`patch_mlp_out`, with the
output shapes of ``get_act_patch_resid_pre``, ``get_act_patch_attn_head_out_by_pos`` and
``get_act_patch_mlp_out``). Unlike there, patches are not one forward pass each:

- the sites of a layer and position run as stacked copies of the batch in one pass
  (:func:`comp.circuits.interventions.run_edited`), which starts at that position: the
  positions before it are the corrupted run's, so their keys and values are reused;
- a site whose clean and corrupted activations are identical (every position before the
  corrupted token, by causality) is a no-op: its value is the corrupted run's, uncomputed;
- the metric reads one position per row, so positions after the last one it reads are
  never run (causal attention: they cannot change it), and patches there are no-ops too;
- at the last layer, an activation that only writes to its own position (head and MLP
  outputs) reaches the metric only at the positions it reads.

The corruption (:data:`CORRUPTIONS`) changes input tokens and recomputes the answers; the
metric (:class:`LogitDiff`) is the logit difference between the clean and the corrupted
answer at the first answer token that differs, normalised to 1 = clean, 0 = corrupted.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from functools import partial

import torch
from transformer_lens import utils

from comp.catalog import N_SEQUENCES
from comp.circuits import fast_sweep, last_layer, shared_prefix
from comp.circuits.data import load_for_analysis
from comp.circuits.interventions import DEFAULT_MAX_ROWS, Prefix, prefix_hooks, run_edited
from comp.circuits.results import PatchResult, PatchSweep
from comp.config import EVAL_SEED
from comp.errors import CompError
from comp.evaluation import eval_batch
from comp.model import pinned_positions
from comp.provenance import recorded
from comp.resources import check_batch
from comp.tasks import Batch, Task, member_task

# ---- corruptions ------------------------------------------------------------------------
Corruption = Callable[[torch.Tensor, tuple[int, int], int, torch.Generator], torch.Tensor]


def _change(values: torch.Tensor, alphabet: tuple[int, int], gen: torch.Generator) -> torch.Tensor:
    """Each value replaced by a different one of the alphabet (a bit is flipped)."""
    lo, hi = alphabet
    shift = torch.randint(1, hi - lo + 1, values.shape, generator=gen, device=values.device)
    return (values - lo + shift) % (hi - lo + 1) + lo


def flip_one(x: torch.Tensor, alphabet: tuple[int, int], at: int, gen: torch.Generator) -> torch.Tensor:
    """Change x_at (1-based) in every row: the same position, so patching maps line up."""
    out = x.clone()
    out[:, at - 1] = _change(x[:, at - 1], alphabet, gen)
    return out


def flip_random(x: torch.Tensor, alphabet: tuple[int, int], at: int, gen: torch.Generator) -> torch.Tensor:
    """Change one input token per row, at a position drawn uniformly per row (``at`` unused)."""
    col = torch.randint(0, x.shape[1], (x.shape[0], 1), generator=gen, device=x.device)
    return x.scatter(1, col, _change(x.gather(1, col), alphabet, gen))


def resample_input(x: torch.Tensor, alphabet: tuple[int, int], at: int, gen: torch.Generator) -> torch.Tensor:
    """A fresh input of the same length (``at`` unused)."""
    return torch.randint(alphabet[0], alphabet[1] + 1, x.shape, generator=gen, device=x.device)


CORRUPTIONS: dict[str, Corruption] = {"flip_one": flip_one, "flip_random": flip_random, "resample_input": resample_input}


def check_corruption(name: str) -> Corruption:
    if name not in CORRUPTIONS:
        raise CompError(f"unknown corruption {name!r}; choose one of: {', '.join(CORRUPTIONS)}")
    return CORRUPTIONS[name]


@dataclass
class Pair:
    """Clean and corrupted versions of the same rows, and the answer token the corruption changed."""

    clean: Batch
    corrupted: Batch
    target: torch.Tensor  # [batch] position of the first answer token that differs
    at: int  # the input position flip_one changes (1-based)


def make_pair(task: Task, length: int, n: int, seed: int, corruption: str = "flip_one", at: int = 0,
              device: "str | torch.device" = "cpu") -> Pair:
    """``n`` evaluation sequences of one length and their corruptions; rows whose answers
    the corruption leaves unchanged are dropped. ``at`` defaults to the middle input."""
    fn = check_corruption(corruption)
    at = at or (length + 1) // 2
    if not 1 <= at <= length:
        raise CompError(f"--at {at} is not an input position of length {length}; give 1..{length}")
    clean = eval_batch(task, length, n, seed, device)
    x = clean.tokens.gather(1, clean.input_positions())  # [batch, L]
    gen = torch.Generator(device=clean.tokens.device).manual_seed(seed)
    corrupted = task.make_batch(fn(x, task.alphabet, at, gen), clean.lengths)
    differs = (clean.tokens != corrupted.tokens) & clean.loss_mask  # [batch, pos]
    keep = differs.any(1)
    if not keep.any():
        raise CompError(f"corruption {corruption!r} changed no answer in {n} sequences; try another or a larger --n")
    target = differs.float().argmax(1)  # first differing answer position
    return Pair(clean.select(keep), corrupted.select(keep), target[keep], at)


# ---- the metric -------------------------------------------------------------------------
@dataclass
class LogitDiff:
    """Normalised logit difference at each row's changed answer token.

    ``raw`` is ``logit(clean answer) - logit(corrupted answer)`` at the position
    predicting it, averaged over rows; the metric maps the clean run's value to 1 and
    the corrupted run's to 0. Takes logits ``[..., batch, pos, d_vocab]``, returns ``[...]``.
    """

    query: torch.Tensor  # [batch] position predicting the changed answer
    clean_token: torch.Tensor  # [batch]
    corrupted_token: torch.Tensor  # [batch]
    clean_value: float = 1.0  # raw value of the clean run
    corrupted_value: float = 0.0  # raw value of the corrupted run

    @property
    def last_pos(self) -> int:
        """The last position the metric reads."""
        return int(self.query.max())

    def raw(self, logits: torch.Tensor, start: int = 0) -> torch.Tensor:
        """Mean logit difference; ``logits`` cover positions ``start..`` only."""
        rows = torch.arange(len(self.query), device=logits.device)
        return self.raw_at_query(logits[..., rows, self.query.to(logits.device) - start, :])

    def raw_at_query(self, at: torch.Tensor) -> torch.Tensor:
        """Mean logit difference from the logits at each row's query, ``[..., batch, d_vocab]``."""
        rows = torch.arange(len(self.query), device=at.device)
        diff = at[..., rows, self.clean_token.to(at.device)] - at[..., rows, self.corrupted_token.to(at.device)]  # [..., batch]
        return diff.mean(-1)

    def normalise(self, raw: torch.Tensor) -> torch.Tensor:
        return (raw - self.corrupted_value) / (self.clean_value - self.corrupted_value)

    def __call__(self, logits: torch.Tensor, start: int = 0) -> torch.Tensor:
        return self.normalise(self.raw(logits, start))

    @classmethod
    @torch.no_grad()
    def for_pair(cls, model, pair: Pair) -> "LogitDiff":
        rows = torch.arange(len(pair.target))
        metric = cls(pair.target - 1, pair.clean.tokens[rows, pair.target], pair.corrupted.tokens[rows, pair.target])
        end = metric.last_pos + 1
        metric.clean_value = metric.raw(model(pair.clean.tokens[:, :end])).item()
        metric.corrupted_value = metric.raw(model(pair.corrupted.tokens[:, :end])).item()
        if abs(metric.clean_value - metric.corrupted_value) < 1e-6:
            raise CompError("the clean and corrupted runs give the same logit difference: nothing to patch back")
        return metric


# ---- the generic routine and its specialisations ------------------------------------------
# activations that write only to their own position's residual stream: at the last layer
# they cannot reach any position but their own
POSITIONWISE = {"z", "result", "attn_out", "resid_mid", "mlp_in", "pre", "post", "mlp_out", "resid_post"}


@torch.no_grad()
def generic_activation_patch(
    model,
    corrupted_tokens: torch.Tensor,
    clean_cache,
    patching_metric: LogitDiff,
    activation_name: str,
    index_axis_names: Sequence[str],
    max_rows: int = DEFAULT_MAX_ROWS,
    fast: bool = True,
) -> torch.Tensor:
    """The metric after patching each site of ``activation_name`` from ``clean_cache``.

    ``index_axis_names`` is ``("layer", "pos")`` or ``("layer", "pos", "head")``: after
    the layer, the axes index the activation's leading dimensions (``[batch, pos, ...]``,
    ``[batch, pos, head, d_head]``). Returns ``[n_layers, pos(, head)]``, the same as
    ``transformer_lens.patching.generic_activation_patch`` with the same arguments.

    ``fast``: plain 2-layer rotary models take :func:`comp.circuits.fast_sweep.sweep` (the
    same values in fewer operators); False runs the general path below for every model.

    Only sites that can change the metric are run (the module docstring says which);
    sites at one position share one pass that starts there, on the corrupted run's keys
    and values before it (:class:`comp.circuits.interventions.Prefix`).
    """
    assert index_axis_names[0] == "layer" and index_axis_names[1] == "pos", "patch sites are (layer, pos, ...)"
    done = fast_sweep.sweep(model, corrupted_tokens, clean_cache, patching_metric, activation_name, max_rows) if fast else None
    if done is not None:  # plain 2-layer rotary models: the whole sweep written out
        return done
    n_site_dims = len(index_axis_names) - 1
    n_layers = model.cfg.n_layers
    end = patching_metric.last_pos + 1  # later positions cannot change the metric
    first_query = int(patching_metric.query.min())
    tokens = corrupted_tokens[:, :end]
    # position ids of the whole sequence (randomized ids depend on it), pinned in every pass
    ids = model.position_ids(corrupted_tokens)[:, :end] if getattr(getattr(model, "encoding", None), "uses_ids", False) else None
    names = [utils.get_act_name(activation_name, layer) for layer in range(n_layers)]
    wanted = set(names) | prefix_hooks(n_layers) | last_layer.cache_hooks(n_layers)
    # positions before the first changed input are the clean run's: the corrupted run starts there
    shared = min(shared_prefix.divergence(model, corrupted_tokens, clean_cache, end, ids, wanted), first_query)
    if shared:
        logits, corrupted_cache = shared_prefix.corrupted_run(model, tokens, clean_cache, shared, wanted,
                                                                 patching_metric.query)
    else:
        with pinned_positions(model, ids):
            logits, corrupted_cache = model.run_with_cache(tokens, names_filter=lambda n: n in wanted)
    baseline = patching_metric(logits, start=shared).item()
    query = patching_metric.query.to(tokens.device)
    at_query = logits[torch.arange(len(query), device=query.device), query - shared]  # [batch, d_vocab]
    clean_final = utils.get_act_name("resid_post", n_layers - 1)
    restored = None  # the clean run's metric, for patches that make the run the clean one
    sizes = {"pos": corrupted_tokens.shape[1], "head": model.cfg.n_heads}
    out = torch.full([n_layers, *(sizes[a] for a in index_axis_names[1:])], baseline)
    for layer, name in enumerate(names):
        clean = clean_cache[name][:, :end].to(tokens.device)  # [batch, pos, ...]
        live = (clean != corrupted_cache[name]).flatten(n_site_dims + 1).any(-1).any(0)  # [pos(, head)]
        if layer == n_layers - 1 and activation_name in POSITIONWISE:
            reads = torch.zeros(end, dtype=torch.bool, device=live.device)
            reads[patching_metric.query] = True
            live &= reads.view(end, *[1] * (n_site_dims - 1))
        sites = live.nonzero().cpu()  # [K, n_site_dims]: the sites whose patch can change the metric
        if activation_name == "resid_pre" and len(sites) == 1 and ids is None and clean_final in clean_cache:
            # the only position where this layer's input differs, patched: from here on the clean run
            if restored is None:
                final = clean_cache[clean_final][torch.arange(len(query)), query.to(clean_cache[clean_final].device)]
                restored = patching_metric.normalise(patching_metric.raw_at_query(
                    last_layer.unembed(model, final.to(tokens.device)[None])[0])).item()
            out[layer, sites[0, 0]] = restored
            continue
        if len(sites) and last_layer.supported(model, activation_name, layer):  # closed forms at the last layer
            if layer == n_layers - 1 and activation_name != "resid_pre":
                final = last_layer.after_attention(model, corrupted_cache, clean_cache, activation_name, sites, query)
            else:
                resid = last_layer.new_resid(model, corrupted_cache, clean_cache, activation_name, layer, sites)
                final = last_layer.before_attention(model, corrupted_cache, resid, sites[:, 0], query, at_query, ids, max_rows,
                                                    last_layer.clean_kv(model, clean_cache, activation_name, layer, sites))
            values = patching_metric.normalise(patching_metric.raw_at_query(final))  # [K]
            out[(torch.full((len(sites),), layer), *sites.T)] = values.to(out.dtype).cpu()
            continue
        for pos in sites[:, 0].unique().tolist():
            group = sites[sites[:, 0] == pos]
            start = pos if pos <= first_query else 0  # positions before start: the corrupted run's
            masks = torch.zeros(len(group), end - start, *live.shape[1:], dtype=torch.bool)  # [K, pos(, head)]
            masks[(torch.arange(len(group)), group[:, 0] - start, *group[:, 1:].T)] = True
            masks = masks.view(*masks.shape, *[1] * (clean.dim() - 1 - n_site_dims))  # broadcast over the rest
            # head and MLP outputs at `pos` leave later positions alone until the next layer
            resume = layer + 1 if start == pos and activation_name in POSITIONWISE and layer < n_layers - 1 else 0
            prefix = Prefix.from_cache(corrupted_cache, n_layers, start, resume, end, ids) if start or resume else None
            values = run_edited(model, tokens[:, start:], {name: masks}, {name: clean[:, start:]},
                                partial(patching_metric, start=start), max_rows, prefix, ids)  # [K]
            out[(torch.full((len(group),), layer), *group.T)] = values.to(out.dtype).cpu()
    return out


patch_resid_pre = partial(generic_activation_patch, activation_name="resid_pre", index_axis_names=("layer", "pos"))
patch_resid_pre.__doc__ = "Patch the residual stream before each block, by (layer, pos): [n_layers, pos]."
patch_head_out_by_pos = partial(
    generic_activation_patch, activation_name="z", index_axis_names=("layer", "pos", "head")
)
patch_head_out_by_pos.__doc__ = "Patch each head's output (hook_z) by (layer, pos, head): [n_layers, pos, n_heads]."
patch_mlp_out = partial(generic_activation_patch, activation_name="mlp_out", index_axis_names=("layer", "pos"))
patch_mlp_out.__doc__ = "Patch each MLP's output by (layer, pos): [n_layers, pos]."

SWEEPS: dict[str, Callable[..., torch.Tensor]] = {
    "resid_pre": patch_resid_pre,
    "head_out": patch_head_out_by_pos,
    "mlp_out": patch_mlp_out,
}


@torch.no_grad()
def patch_sweep(model, pair: Pair, max_rows: int = DEFAULT_MAX_ROWS) -> PatchSweep:
    """Every sweep of :data:`SWEEPS` on one pair (MLPs only if the model has them)."""
    check_batch(model.cfg, *pair.clean.tokens.shape, pair.clean.tokens.device, "patching",
                "lower --n or use a shorter --length")
    metric = LogitDiff.for_pair(model, pair)
    kinds = [k for k in SWEEPS if not (k == "mlp_out" and model.cfg.attn_only)]
    names = {utils.get_act_name(SWEEPS[k].keywords["activation_name"], layer) for k in kinds for layer in range(model.cfg.n_layers)}
    n_layers = model.cfg.n_layers  # what lets the corrupted runs start at the first changed input
    names |= shared_prefix.needed(model, prefix_hooks(n_layers) | last_layer.cache_hooks(n_layers))
    names.add(utils.get_act_name("resid_post", n_layers - 1))
    names |= fast_sweep.clean_hooks(model)
    _, clean = model.run_with_cache(pair.clean.tokens, names_filter=lambda n: n in names)
    out = {k: SWEEPS[k](model, pair.corrupted.tokens, clean, metric, max_rows=max_rows).tolist() for k in kinds}
    return PatchSweep(
        resid_pre=out["resid_pre"], head_out=out["head_out"], mlp_out=out.get("mlp_out"),
        clean_logit_diff=metric.clean_value, corrupted_logit_diff=metric.corrupted_value,
        query_positions=sorted(set(metric.query.tolist())),
    )


@recorded
def patch_run(ckpt: str, corruption: str = "flip_one", length: int = 0, at: int = 0, n: int = N_SEQUENCES, seed: int = EVAL_SEED,
              member: str = "", device: str = "cpu") -> PatchResult:
    """Patching sweeps of a run on ``n`` sequences of ``length`` (default: its longest training length)."""
    check_corruption(corruption)
    run, wanted = load_for_analysis(ckpt, str(length) if length else "", device)
    task = member_task(run.task, member)
    length = max(wanted)
    pair = make_pair(task, length, n, seed, corruption, at, device)
    return PatchResult(
        run=run.name, task=task.name, encoding=run.config.model.encoding, corruption=corruption, length=length,
        at=pair.at if corruption == "flip_one" else None, n=len(pair.target), seed=seed,
        positions=task.position_labels(length),
        metric="normalised logit difference at the first changed answer token: 1 = clean, 0 = corrupted",
        **asdict(patch_sweep(run.model, pair)),
    )
