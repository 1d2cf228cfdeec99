"""Does what a model does at its training lengths predict its accuracy at 4x and 8x?

    PYTHONPATH=src python docs/results/dynamics/margin.py OUT.json DIR [DIR ...]

Each DIR is a run directory (``config.json``) whose weights are ``model.safetensors``
(a finished run), else ``training_state.safetensors`` (a run still training: its last
checkpoint, the ``model/`` tensors); or a snapshot file ``RUN/snapshots/step_*.safetensors``. Per model, at the training lengths only
(``L_TRAIN``, ``N`` sequences each, the evaluation seed):

- the best iteration head (``comp heads``' iteration score, averaged over 1-16) and its score;
- at the longest training length, at the position predicting ``s_t``: the attention
  *margin* on ``x_t``, ``log p(x_t) - log max_{j != x_t} p(j)`` (= the pre-softmax score
  gap to the strongest other key), and the *log-odds* ``log p(x_t) - log(1 - p(x_t))``,
  which is what dilution erodes (each doubling of the keys costs about log 2 at a fixed
  score gap); each for the best iteration head (``head_*``) and for the best head at each
  step (``any_*``: the read may be split over heads), as the mean and the 5th percentile
  over all steps of all sequences;

and, past the training lengths, teacher-forced whole-CoT accuracy (= greedy decoding's)
at ``LONG`` (4x and 8x). The JSON holds one row per model; ``predict.py`` makes the tables.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
from transformer_lens import utils

from comp.circuits.data import analysis_groups, answer_steps
from comp.circuits.heads import head_scores
from comp.config import EVAL_SEED
from comp.io import load_tensors, read_metadata, write_json
from comp.runs.load import load_run_for_lengths
from comp.runs.state import load_model_tensors
from comp.train.loop import quick_eval

L_TRAIN = list(range(1, 17))
N = 64
LONG = [64, 128]


def weights(run_dir: Path) -> tuple[dict, "int | None"]:
    """The model tensors of a run (or snapshot file) and the step they are from."""
    if run_dir.suffix == ".safetensors":  # RUN/snapshots/step_000500.safetensors
        return load_tensors(run_dir), int(run_dir.stem.split("_")[-1])
    final = run_dir / "model.safetensors"
    if final.exists():
        return load_tensors(final), None
    state = run_dir / "training_state.safetensors"
    step = json.loads(read_metadata(state)["state"])["step"]
    tensors = {k[len("model/"):]: v for k, v in load_tensors(state).items() if k.startswith("model/")}
    return tensors, step


@torch.no_grad()
def read_margins(model, group) -> dict:
    """Per answer step of ``group``, every head's margin and log-odds on x_t: ``{name: [layer, head, batch, steps]}``."""
    names = [utils.get_act_name("pattern", layer) for layer in range(model.cfg.n_layers)]
    _, cache = model.run_with_cache(group.batch.tokens, names_filter=lambda n: n in names)
    steps = answer_steps(group.batch)
    margins, logodds = [], []
    for name in names:
        pattern = cache[name].float()  # [batch, head, q, k]
        b, h, _, k = pattern.shape
        rows = pattern.gather(2, steps.query[:, None, :, None].expand(b, h, -1, k))  # [batch, head, steps, k]
        key = steps.key[:, None, :, None].expand(b, h, -1, 1)
        p = rows.gather(3, key)[..., 0].clamp_min(1e-30)  # [batch, head, steps]
        others = rows.scatter(3, key, 0.0)  # x_t's weight removed
        margins.append((p.log() - others.max(-1).values.clamp_min(1e-30).log()).transpose(0, 1))
        logodds.append((p.log() - (1 - p).clamp_min(1e-30).log()).transpose(0, 1))
    return {"margin": torch.stack(margins), "logodds": torch.stack(logodds), "valid": steps.valid}


def summary(values: torch.Tensor, valid: torch.Tensor, prefix: str) -> dict:
    """Mean and 5th percentile over the valid steps of a [batch, steps] tensor."""
    v = values[valid]
    return {f"{prefix}_mean": v.mean().item(), f"{prefix}_q05": v.quantile(0.05).item()}


def measure(run_dir: Path) -> dict:
    run = load_run_for_lengths(run_dir.parent.parent if run_dir.suffix == ".safetensors" else run_dir, LONG,
                               weights=False)
    tensors, step = weights(run_dir)
    load_model_tensors(run.model, tensors, str(run_dir))
    run.model.eval()
    groups = analysis_groups(run.task, L_TRAIN, N, EVAL_SEED)
    rows = head_scores(run.model, groups)
    best = max(rows, key=lambda r: r.iteration)
    longest = [g for g in groups if g.length == max(L_TRAIN)][0]
    m = read_margins(run.model, longest)
    valid = m["valid"]
    out = {"run": str(run_dir), "step": step, "head": best.component, "iteration": best.iteration,
           "iteration_frac": best.iteration_frac}
    for kind in ("margin", "logodds"):
        out.update(summary(m[kind][best.layer, best.head], valid, f"head_{kind}"))  # the best iteration head
        out.update(summary(m[kind].flatten(0, 1).max(0).values, valid, f"any_{kind}"))  # the best reader per step
    accs = quick_eval(run.model, run.task, [max(L_TRAIN), *LONG], N, EVAL_SEED)
    out.update({f"acc_L{k}": v for k, v in accs.items()})
    return out


def main(out: Path, dirs: list[Path]) -> None:
    results = []
    for d in dirs:
        results.append(measure(d))
        print(json.dumps(results[-1]), flush=True)
        write_json(out, results)


if __name__ == "__main__":
    main(Path(sys.argv[1]), [Path(p) for p in sys.argv[2:]])
