"""``comp heads``, ``comp ablate``, ``comp patch``: circuit analysis of a trained run."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from comp.catalog import ABLATIONS, CORRUPTIONS, HYPOTHESES, LAYER_CHOICES, MIN_SCORE, SUFFICIENCY_ABLATIONS, WHAT
from comp.catalog import ALL_HYPOTHESES as ALL
from comp.cli.common import check_output_path, user_errors, write_outputs
from comp.cli.options import ANALYSIS_LENGTHS, ANALYSIS_SEED, CKPT, DEVICE, JSON, MEMBER, sequences
from comp.errors import CompError
from comp.views.tables import console, print_table

if TYPE_CHECKING:  # pragma: no cover
    from comp.circuits.results import Evidence

LENGTHS = ANALYSIS_LENGTHS
SEED = ANALYSIS_SEED


def heads_cli(
    ckpt: str = CKPT,
    lengths: str = LENGTHS,
    n: int = sequences(),
    seed: int = SEED,
    member: str = MEMBER,
    device: str = DEVICE,
    json_path: Path | None = JSON,
) -> None:
    """Attention-head scores: previous-token, iteration (x_t from the position predicting s_t), EoI, BOS, self."""
    _heads(ckpt, lengths, n, seed, member, device, json_path)


@user_errors
def _heads(ckpt, lengths, n, seed, member, device, json_path) -> None:
    check_output_path(json_path, (".json",))
    from comp.circuits.heads import SCORES, score_heads

    result = score_heads(ckpt, lengths, n, seed, device, member)
    on = f" on {member}" if member else ""
    print_table(result.rows, ["component", *SCORES], headers=["head", "prev", "iter", "iter>0.5", "eoi", "bos", "self"],
                title=f"{result.run}: head scores{on}, lengths {_span(result.lengths)}, {n} sequences each")
    write_outputs(result, json_path, run=ckpt)


def ablate_cli(
    ckpt: str = CKPT,
    method: str = typer.Option("mean", help=f"What replaces an ablated activation: {', '.join(ABLATIONS)}."),
    what: str = typer.Option("both", help=f"Components to ablate one at a time: {', '.join(WHAT)}."),
    lengths: str = LENGTHS,
    n: int = sequences("Sequences per length (and reference sequences)."),
    seed: int = SEED,
    device: str = DEVICE,
    json_path: Path | None = JSON,
) -> None:
    """Accuracy (teacher-forced whole CoT, final answer) and loss with each head or MLP ablated."""
    _ablate(ckpt, method, what, lengths, n, seed, device, json_path)


@user_errors
def _ablate(ckpt, method, what, lengths, n, seed, device, json_path) -> None:
    check_output_path(json_path, (".json",))
    from comp.circuits.ablate import ablate_run, check_method

    check_method(method)
    if what not in WHAT:
        raise CompError(f"unknown --what {what!r}; choose one of: {', '.join(WHAT)}")
    result = ablate_run(ckpt, method, what, lengths, n, seed, device)
    rows = [{"component": "none (baseline)", **asdict(result.baseline)}, *result.rows]
    print_table(rows, ["component", "acc_cot", "acc_answer", "loss", "d_acc_answer"],
                title=f"{result.run}: {method} ablation, lengths {_span(result.lengths)} "
                      f"(chance final answer {result.chance_answer:.3f})")
    write_outputs(result, json_path, run=ckpt)


def patch_cli(
    ckpt: str = CKPT,
    corruption: str = typer.Option("flip_one", help=f"How the input is corrupted: {', '.join(CORRUPTIONS)}."),
    length: int = typer.Option(0, help="Input length of the patched sequences (default: the longest trained)."),
    at: int = typer.Option(0, help="Input position flipped by flip_one, 1-based (default: the middle)."),
    n: int = sequences("Sequence pairs (clean, corrupted)."),
    seed: int = SEED,
    member: str = typer.Option("", help="Task of a multi-task run to patch (default: its first)."),
    hypothesis: str = typer.Option("", help=f"Test a circuit hypothesis instead: {', '.join([*HYPOTHESES, ALL])}."),
    lengths: str = typer.Option("", help="With --hypothesis: lengths of head scores and ablations (default: trained)."),
    min_score: float = typer.Option(MIN_SCORE, help="With --hypothesis: the score a component needs to play the role."),
    layers: str = typer.Option("any", help=f"With --hypothesis: layers to look in: {', '.join(LAYER_CHOICES)} "
                               "(each role where the paper puts it), or indices such as 0,1."),
    ablation: str = typer.Option("mean", help=f"With --hypothesis: what replaces the components outside the circuit "
                                 f"in the sufficiency test: {', '.join(SUFFICIENCY_ABLATIONS)}."),
    device: str = DEVICE,
    json_path: Path | None = JSON,
    plot: Path | None = typer.Option(None, help="Write heatmaps of the sweeps: .html (interactive) or .png."),
) -> None:
    """Activation patching (resid_pre, head outputs, MLP outputs) or a hypothesis test with a verdict."""
    _patch(ckpt, corruption, length, at, n, seed, member, hypothesis, lengths, min_score, device, json_path, plot,
           layers, ablation)


@user_errors
def _patch(ckpt, corruption, length, at, n, seed, member, hypothesis, lengths, min_score, device, json_path, plot,
           layers="any", ablation="mean") -> None:
    from comp.views.patching import FORMATS, patch_heatmaps, write_figure

    check_output_path(json_path, (".json",))
    check_output_path(plot, FORMATS)
    from comp.circuits.hypotheses import (
        HypothesisRequest,
        Thresholds,
        assess_run,
        check_sufficiency_ablation,
        hypothesis_names,
    )
    from comp.circuits.patching import check_corruption, patch_run
    from comp.circuits.roles import parse_layers

    check_corruption(corruption)
    if lengths and not hypothesis:
        raise CompError("--lengths only applies with --hypothesis; drop it, or give --length for the patching sweep")
    if not hypothesis and (layers, ablation) != ("any", "mean"):
        raise CompError("--layers and --ablation only apply with --hypothesis; drop them, or add --hypothesis NAME")
    if hypothesis:
        hypothesis_names(hypothesis)
        if plot is not None:
            raise CompError("--plot draws the patching sweeps; drop it with --hypothesis")
        request = HypothesisRequest(layers=parse_layers(layers), thresholds=Thresholds(score=min_score),
                                    sufficiency_ablation=check_sufficiency_ablation(ablation))
        result = assess_run(ckpt, hypothesis, lengths, n, seed, length, at, member, device, request)
        for evidence in result.hypotheses:
            _print_evidence(result.run, evidence)
        _print_thresholds(result.thresholds)
        write_outputs(result, json_path, run=ckpt)
        return
    result = patch_run(ckpt, corruption, length, at, n, seed, member, device)
    _print_top_sites(result)
    write_outputs(result, json_path, run=ckpt)
    if plot is not None:
        write_figure(patch_heatmaps(result), plot)
        typer.echo(f"wrote {plot}", err=True)


def _span(lengths: list[int]) -> str:
    return f"{lengths[0]}-{lengths[-1]}" if len(lengths) > 1 else str(lengths[0])


SHOWN = 0.05  # the patch table lists sites restoring at least this much (in absolute value)


def _print_top_sites(result: dict, top: int = 12) -> None:
    from comp.circuits.components import Component

    labels = result.positions
    sites = [("resid_pre", f"layer {layer}", p, v) for layer, row in enumerate(result.resid_pre) for p, v in enumerate(row)]
    sites += [("head_out", Component(layer, h).label, p, v) for layer, rows in enumerate(result.head_out)
              for p, row in enumerate(rows) for h, v in enumerate(row)]
    sites += [("mlp_out", Component(layer).label, p, v) for layer, row in enumerate(result.mlp_out or []) for p, v in enumerate(row)]
    sites = sorted((s for s in sites if abs(s[3]) >= SHOWN), key=lambda s: -abs(s[3]))
    rows = [{"activation": a, "site": s, "position": f"{p} ({labels[p]})", "restored": v} for a, s, p, v in sites[:top]]
    at = f", x{result.at} flipped" if result.at else ""
    print_table(rows, ["activation", "site", "position", "restored"],
                title=f"{result.run}: patches restoring >= {SHOWN} ({result.corruption}{at}, length {result.length}, "
                      f"{result.n} pairs; 1 = clean, 0 = corrupted)")
    if len(sites) > top:
        console.print(f"{len(sites) - top} more sites restore >= {SHOWN}; --json has every value")


def _print_evidence(run: str, r: Evidence) -> None:
    thr = r.thresholds
    found = "; ".join(f"{role}: {', '.join(c)}" for role, c in r.roles.items()) if r.test.score == "roles" else \
        f"{r.test.score} of {', '.join(r.components)}" + (" (summed)" if len(r.components) > 1 else "")
    rows = [
        {"test": "score", "value": r.score, "threshold": f">= {thr['score']}", "detail": found,
         "result": "yes" if r.score >= thr["score"] else "no"},
        {"test": "baseline", "value": r.baseline.acc_answer, "threshold": f">= {thr['baseline']}",
         "detail": "final-answer accuracy, intact", "result": "yes" if r.baseline.acc_answer >= thr["baseline"] else "no"},
        {"test": "necessity", "value": r.necessity.acc_answer,
         "threshold": f"<= {r.chance_answer + thr['chance_margin']:.3f} (chance + {thr['chance_margin']})",
         "detail": f"{r.test.necessity_ablation}-ablating {', '.join(r.components)}", "result": r.necessity.result},
        {"test": "sufficiency", "value": r.sufficiency.acc_answer,
         "threshold": f">= {r.baseline.acc_answer - thr['sufficiency']:.3f} (baseline - {thr['sufficiency']})",
         "detail": f"{r.test.sufficiency_ablation}-ablating {', '.join(r.sufficiency.ablated) or 'nothing'}; whole CoT "
                   f"{r.sufficiency.acc_cot:.3f}, logit diff recovered {r.sufficiency.logit_diff_recovered:.3f}",
         "result": r.sufficiency.result},
    ]
    print_table(rows, ["test", "value", "threshold", "detail", "result"],
                title=f"{run}: {r.hypothesis} (layers {r.test.layers}): {r.claim}")
    if len(r.members) > 1:
        print_table(r.members, ["role", "component", "score", "share", "alone_acc_answer", "alone_d_loss",
                                "left_out_acc_answer"],
                    headers=["role", "member", "score", "share", "ablated alone", "d loss alone", "group without it"],
                    title=f"{r.hypothesis}: each member's share (final-answer accuracy; all ablated: {r.necessity.acc_answer:.3f})")
    typer.echo(f"{r.hypothesis}: {r.verdict} ({r.reason})")


def _print_thresholds(thr: dict) -> None:
    typer.echo(f"thresholds (final-answer accuracy): score >= {thr['score']}; baseline >= {thr['baseline']}; "
               f"necessary: ablated <= chance + {thr['chance_margin']}; not necessary: ablated >= baseline - "
               f"{thr['no_effect']}; sufficient: circuit only >= baseline - {thr['sufficiency']}")
