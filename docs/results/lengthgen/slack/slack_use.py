"""What do answer-only parity models do with their slack positions? (docs/results/lengthgen/slack.md)

For one trained ``parity_nocot`` run (any slack, ``L`` included), on the fixed evaluation sets
of a few training lengths, with ``q`` the position that predicts the answer (the last slack
token, or EoI without slack):

- ``attention``: where each head looks from ``q``: the task token, the inputs ``x_1..x_L``
  (and, of that, the inputs that are 1 and those that are 0), EoI, the other slack tokens,
  ``q`` itself (mass summed over each class, averaged over rows); at the training lengths
  8, 12, 16 and at 32 and 64;
  ``slack_attention``: the same from the other slack positions (all slack tokens but ``q``);
- ``patching``: the residual stream entering layer 1 (``blocks.1.hook_resid_pre``, the only
  way what layer 0 computed at a position reaches ``q`` in a 2-layer model) replaced, at one
  set of positions, by that of another sequence of the same length (the next row). Reported:
  answer accuracy on the rows whose parity differs from the donor's (1: the set is not used;
  0: the answer follows the donor's set);
- ``probes``: linear probes (comp.probes.probe_score, train and test sets of different seeds)
  of the final parity ``s_L``, of the number of ones in the input (``ones``, 0..16: a count the
  answer could be read from) and of the prefix parity ``s_j`` (``j``-th slack token,
  ``j <= L``) from the residual stream entering layer 1 and leaving the last layer, at
  ``q``, at the other slack positions, at EoI.

    python docs/results/lengthgen/slack/slack_use.py RUN_DIR [RUN_DIR ...] --out DIR
    python docs/results/lengthgen/slack/slack_use.py --summary DIR/*.json   # the table of slack.md
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import torch

from comp.evaluation import eval_batch
from comp.probes import probe_score
from comp.runs.load import load_run, load_run_config

LENGTHS = (8, 12, 16)  # training lengths the analyses run at
ATTENTION_LENGTHS = (*LENGTHS, 32, 64)  # attention and patching also past them (2x, 4x)
CLASSES = ("bos", "input", "ones", "zeros", "eoi", "slack", "self")


def position_sets(L: int, q: int) -> dict[str, list[int]]:
    """Positions of each class in a sequence of input length ``L`` whose answer is predicted at ``q``."""
    sets = {"bos": [0], "input": list(range(1, L + 1)), "eoi": [L + 1], "slack": list(range(L + 2, q)), "self": [q]}
    if q == L + 1:  # no slack: EoI predicts the answer
        sets["eoi"] = []
    return sets


def answers(model, batch, hooks=()) -> torch.Tensor:
    """[batch] the predicted answer token (argmax at the predicting position)."""
    with torch.no_grad():
        logits = model.run_with_hooks(batch.tokens, fwd_hooks=list(hooks))  # [batch, pos, vocab]
    q = batch.answer_pos - 1
    return logits[torch.arange(len(batch)), q].argmax(-1)


def patched(positions: list[int], donor: torch.Tensor):
    """A hook that writes the donor's residual stream at ``positions``."""
    def hook(resid, hook):  # [batch, pos, d_model]
        resid[:, positions] = donor[:, positions]
        return resid
    return hook


def analyse_length(model, task, L: int, n: int) -> dict:
    batch = eval_batch(task, L, n, 0)
    q = int(batch.answer_pos[0]) - 1
    sets = position_sets(L, q)
    truth = batch.tokens[:, q + 1]  # [batch]
    x = batch.tokens[:, 1 : L + 1]  # [batch, L]
    n_layers = model.cfg.n_layers
    names = [f"blocks.{layer}.attn.hook_pattern" for layer in range(n_layers)] + ["blocks.1.hook_resid_pre"]
    with torch.no_grad():
        logits, cache = model.run_with_cache(batch.tokens, names_filter=lambda name: name in names)
    acc = (logits[:, q].argmax(-1) == truth).float().mean().item()
    attention, slack_attention = [], []
    for layer in range(n_layers):
        pattern = cache[f"blocks.{layer}.attn.hook_pattern"]  # [batch, head, q, k]
        for h in range(model.cfg.n_heads):
            row = pattern[:, h, q]  # [batch, k]
            on_inputs = row[:, 1 : L + 1]  # [batch, L]
            attention.append({"layer": layer, "head": h, **{c: row[:, p].sum(1).mean().item() if p else 0.0
                                                             for c, p in sets.items()},
                              "ones": (on_inputs * x).sum(1).mean().item(),  # mass on inputs that are 1
                              "zeros": (on_inputs * (1 - x)).sum(1).mean().item()})
            if sets["slack"]:
                rows = pattern[:, h][:, sets["slack"]]  # [batch, n_slack, k]
                slack_attention.append({"layer": layer, "head": h, **{
                    c: rows[:, :, p].sum(-1).mean().item() for c, p in sets.items() if c not in ("self",) and p}})
    donor = cache["blocks.1.hook_resid_pre"].roll(1, 0)  # [batch, pos, d_model]: the next row's
    differ = truth != truth.roll(1, 0)
    patching = []
    named = {"slack": sets["slack"], "eoi": sets["eoi"], "input": sets["input"],
             "all_but_q": list(range(q))}
    for name, positions in named.items():
        if not positions:
            continue
        got = answers(model, batch, [("blocks.1.hook_resid_pre", patched(positions, donor))])
        patching.append({"set": name, "n_positions": len(positions), "acc": (got == truth).float().mean().item(),
                         "acc_differ": (got == truth)[differ].float().mean().item(), "n_differ": int(differ.sum())})
    return {"length": L, "n": n, "acc": acc, "attention": attention, "slack_attention": slack_attention,
            "patching": patching}


def probe_sets(model, task, seed: int, n: int) -> dict:
    """Activations and labels of the probe sites, pooled over LENGTHS: {(hook, sites, target): (x, y)}."""
    hooks = ("blocks.1.hook_resid_pre", f"blocks.{model.cfg.n_layers - 1}.hook_resid_post")
    out: dict = {}
    for L in LENGTHS:
        batch = task.sample(torch.Generator().manual_seed(seed * 1000 + L), L, n)
        q = int(batch.answer_pos[0]) - 1
        sets = position_sets(L, q)
        x = batch.tokens[:, 1 : L + 1]
        prefix = x.cumsum(1) % 2  # [batch, L]: s_1..s_L
        with torch.no_grad():
            _, cache = model.run_with_cache(batch.tokens, names_filter=lambda name: name in hooks)
        sites = {"q": [q], "slack": sets["slack"], "eoi": sets["eoi"]}
        for hook in hooks:
            for where, positions in sites.items():
                if not positions:
                    continue
                acts = cache[hook][:, positions]  # [batch, n_pos, d_model]
                j = torch.tensor([min(p - L - 1, L) for p in positions])  # slack index (EoI: 0), capped at L
                targets = {"s_L": prefix[:, -1:].expand(-1, len(positions)),  # the answer
                           "ones": x.sum(1, keepdim=True).expand(-1, len(positions))}  # the count it could come from
                if where == "slack":
                    targets["s_j"] = prefix[:, (j - 1).clamp_min(0)]
                for target, y in targets.items():
                    key = (hook, where, target)
                    xs, ys = out.get(key, ([], []))
                    out[key] = (xs + [acts.reshape(-1, acts.shape[-1])], ys + [y.reshape(-1)])
    return {k: (torch.cat(xs), torch.cat(ys)) for k, (xs, ys) in out.items()}


def probes(model, task, n: int) -> list[dict]:
    train, test = probe_sets(model, task, 1, n), probe_sets(model, task, 2, n)
    rows = []
    for key, (x_train, y_train) in train.items():
        x_test, y_test = test[key]
        score = probe_score(x_train, y_train, x_test, y_test)
        rows.append({"hook": key[0], "sites": key[1], "target": key[2], "acc": score.acc, "chance": score.chance,
                     "n_train": len(y_train)})
    return rows


def analyse(path: str, n: int) -> dict:
    longest = load_run_config(Path(path)).task.build().seq_len(max(ATTENTION_LENGTHS))
    run = load_run(path, n_ctx=longest)
    per_length = [analyse_length(run.model, run.task, L, n) for L in ATTENTION_LENGTHS]
    return {"run": run.name, "slack": run.config.task.slack, "lengths": list(ATTENTION_LENGTHS), "n": n,
            "per_length": per_length, "probes": probes(run.model, run.task, n)}


def rounded(data, digits: int = 4):
    """``data`` with every float rounded (small JSON files)."""
    if isinstance(data, float):
        return round(data, digits)
    if isinstance(data, dict):
        return {k: rounded(v, digits) for k, v in data.items()}
    if isinstance(data, list):
        return [rounded(v, digits) for v in data]
    return data


def summary_row(result: dict) -> dict:
    """Means over lengths: the answer position's attention by class (summed over heads of a layer), patching, probes."""
    row: dict = {"run": result["run"], "slack": result["slack"]}
    per = [p for p in result["per_length"] if p["length"] in LENGTHS]
    row["acc"] = statistics.mean(p["acc"] for p in per)
    layers = sorted({a["layer"] for a in per[0]["attention"]})
    for layer in layers:
        heads = [a for a in per[0]["attention"] if a["layer"] == layer]
        for c in CLASSES:  # mean over heads of the mass on class c, averaged over lengths
            row[f"L{layer}_{c}"] = statistics.mean(
                statistics.mean(a[c] for a in p["attention"] if a["layer"] == layer) for p in per) if heads else None
    for name in ("slack", "eoi", "input", "all_but_q"):
        vals = [x["acc_differ"] for p in per for x in p["patching"] if x["set"] == name]
        row[f"patch_{name}"] = statistics.mean(vals) if vals else None
    for pr in result["probes"]:
        layer = "pre1" if pr["hook"].endswith("resid_pre") else "out"
        row[f"probe_{pr['target']}_{pr['sites']}_{layer}"] = pr["acc"]
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="*")
    parser.add_argument("--n", type=int, default=256)
    parser.add_argument("--out", default="")
    parser.add_argument("--summary", nargs="*", default=None, help="result JSON files to summarise")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.summary is not None:
        rows = [summary_row(json.loads(Path(f).read_text())) for f in args.summary]
        print(json.dumps(rows, indent=1))
        return
    for path in args.runs:
        result = analyse(path, args.n)
        if args.out:
            Path(args.out).mkdir(parents=True, exist_ok=True)
            (Path(args.out) / f"{result['run']}.json").write_text(json.dumps(rounded(result)) + "\n")
        print(json.dumps(summary_row(result)), flush=True)


if __name__ == "__main__":
    main()
