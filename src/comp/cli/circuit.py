"""``comp circuit``: automatic circuit discovery; ``comp circuit diff A.json B.json``: compare two."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import typer

from comp.catalog import CIRCUIT_ABLATIONS as ABLATIONS
from comp.catalog import CIRCUIT_LEVELS as LEVELS
from comp.catalog import CIRCUIT_METHODS as METHODS
from comp.cli.common import check_output_path, user_errors, write_outputs
from comp.cli.options import ANALYSIS_LENGTHS, ANALYSIS_SEED, DEVICE, JSON, MEMBER, sequences
from comp.errors import CompError
from comp.views.tables import console, print_table

app = typer.Typer(invoke_without_command=True, no_args_is_help=False, add_completion=False,
                  help="Find the circuit of a run (nodes or edges), or compare two circuits (diff).")


@app.callback()
def circuit_cli(
    ctx: typer.Context,
    ckpt: str = typer.Option("", help="Run name under runs/ or a run directory."),
    level: str = typer.Option("nodes", help=f"What to prune: {', '.join(LEVELS)}."),
    method: str = typer.Option("exact", help=f"How: {', '.join(METHODS)} (eap/eap-ig: attribution, verified exactly)."),
    faithfulness: float | None = typer.Option(
        None, show_default=False,
        help="Share of the logit difference the circuit alone must recover, in (0, 1] (default: 0.95 without --keep)."),
    keep: str = typer.Option(
        "", help="What pruning must keep, as shares of the full model in (0, 1]: logit (the logit difference, "
                 "as --faithfulness), answer (final-answer accuracy), cot (whole-CoT accuracy), e.g. answer=0.95,cot=0.9 "
                 "(default: logit=0.95). Kept on the discovery batch (--data-seed); the scores reported are on a "
                 "held-out batch (data seed + 2)."),
    order: str = typer.Option("stages", help="Greedy pruning's order: stages (from the logits back, stage by stage, "
                                             "then a final pass over all), global (every unit at once; slower) or "
                                             "nodes (edge level: prune nodes first, then the edges among the kept nodes)."),
    swap: bool = typer.Option(False, help="After pruning, the swap pass: remove two kept units and re-add at most one "
                                          "pruned unit while every target holds, until no such move does "
                                          "(smaller circuits; slower)."),
    groups: bool = typer.Option(False, help="With --swap: also group moves, alternating with the swap pass: drop every "
                                            "kept edge into one head input, into one head or out of one node, and "
                                            "re-add the fewest edges that keep the targets (edge level; slower)."),
    plateau: int = typer.Option(0, help="With --swap: then up to this many plateau moves (one kept unit out, one pruned "
                                        "unit in, raising the smallest margin over both batches), each followed by "
                                        "the swap pass (default: 0, none)."),
    select: str = typer.Option("", help="With --swap: of every circuit the search passed through, keep the smallest "
                                        "that keeps these shares on a selection batch (data seed + 6), as --keep's "
                                        "spec, e.g. answer=0.96,cot=0.92 (default: none, the search's last circuit)."),
    budget: float = typer.Option(0.0, help="At most this share of the units (edges at --level edges, nodes at nodes), "
                                           "e.g. 0.25: after the search, the units whose removal harms least (on the "
                                           "discovery and validation batches) go until the circuit fits, even past the "
                                           "--keep thresholds (listed in the JSON; a warning says so) (default: 0, none)."),
    ablation: str = typer.Option("mean", help=f"What replaces what is outside the circuit: {', '.join(ABLATIONS)}."),
    lengths: str = ANALYSIS_LENGTHS,
    n: int = sequences("Sequences per length (and as many reference sequences unless --ref-n)."),
    ref_n: int = typer.Option(0, help="Reference sequences per length of every batch: a mean ablation replaces with "
                                      "their mean, estimated better from more, e.g. 256 (default: 0, as many as --n)."),
    seed: int = ANALYSIS_SEED,
    split_positions: bool = typer.Option(True, help="Nodes and edges per position class (input, EoI, answer)."),
    member: str = MEMBER,
    device: str = DEVICE,
    json_path: Path | None = JSON,
    plot: Path | None = typer.Option(None, help="Draw the circuit: .html (interactive) or .png."),
) -> None:
    """Automatic circuit discovery: the smallest set of nodes or edges that keeps the model's answers."""
    if ctx.invoked_subcommand is None:
        _discover(ckpt, level, method, faithfulness, keep, order, ablation, lengths, n, seed, split_positions, member,
                  device, json_path, plot, swap, groups, plateau, select, ref_n, budget)


@user_errors
def _discover(ckpt, level, method, faithfulness, keep, order, ablation, lengths, n, seed, split_positions, member, device,
              json_path, plot, swap=False, groups=False, plateau=0, select="", ref_n=0, budget=0.0) -> None:
    if not ckpt:
        raise CompError("give --ckpt RUN to discover a circuit, or use: comp circuit diff A.json B.json")
    from comp.circuits.discover import check_options, discover_run
    from comp.circuits.pruning import parse_keep
    from comp.views.browser import chromium
    from comp.views.circuit import circuit_figure
    from comp.views.patching import FORMATS, write_figure

    check_output_path(json_path, (".json",))
    check_output_path(plot, FORMATS)
    check_options(level, method, ablation, faithfulness, order, budget)
    targets = parse_keep(keep, faithfulness)
    if plot is not None and plot.suffix.lower() == ".png":
        chromium()  # PNGs are drawn in Chromium: fail before the work when there is none
    result = discover_run(ckpt, level, method, ablation, targets.logit, lengths, n, seed, split_positions, device,
                          keep=targets, order=order, member=member, swap=swap,
                          group_moves=groups, plateau=plateau, select=select, ref_n=ref_n, budget=budget).to_dict()
    print_circuit(result)
    write_outputs(result, json_path, run=ckpt)
    if plot is not None:
        write_figure(circuit_figure(result), plot)
        typer.echo(f"wrote {plot}", err=True)


def print_scores(r: dict, title: str) -> None:
    """The full model, the circuit alone and the circuit knocked out, one row each."""
    rows = [{"what": what, **r[key]} for what, key in
            [("full model", "model"), ("circuit alone (faithfulness)", "circuit"), ("circuit knocked out (completeness)", "knocked_out")]]
    print_table(rows, ["what", "acc_answer", "acc_cot", "logit_diff", "recovered"], title=title)


def print_circuit(r: dict) -> None:
    wanted = ",".join(f"{k}={v:g}" for k, v in r.get("keep", {}).items() if v is not None) or f"logit={r['target']}"
    on = f" on {r['member']}" if r.get("member") else ""
    budget = f", budget {r['budget']:g} ({len(r.get('budget_trims', []))} trimmed)" if r.get("budget") else ""
    print_scores(r, f"{r['run']}{on}: {r['level']} circuit by {r['method']} ({r['ablation']} ablation, keep {wanted}, "
                    f"{r.get('order', 'stages')} order{', swap pass' if r.get('swap') else ''}"
                    f"{', group moves' if r.get('group_pass') else ''}"
                    f"{', plateau moves' if r.get('plateau') else ''}{', selected' if r.get('selection') else ''}"
                    f"{budget}), "
                    f"{r['n_nodes']}/{r['n_nodes_total']} nodes, {r['n_edges']}/{r['n_edges_total']} edges, {r['seconds']:.1f} s; "
                    f"scored on the {r.get('scored_on', 'discovery batch')}")
    if r.get("fit"):
        fit = r["fit"]["circuit"]
        typer.echo(f"on the discovery batch the circuit alone keeps: final answer {fit['acc_answer']:.3f}, "
                   f"whole CoT {fit['acc_cot']:.3f}, logit difference {fit['recovered']:.3f}")
    kept = sorted(r["effects"].items(), key=lambda kv: -kv[1])
    print_table([{"kept": k, "effect": v} for k, v in kept[:20]], ["kept", "effect"],
                title="kept units: drop in recovered logit difference when each alone is removed from the circuit")
    if len(kept) > 20:
        console.print(f"{len(kept) - 20} more kept units; --json has every one")
    sel = r.get("selection")
    if sel:
        typer.echo(f"selection batch (data seed {sel['seed']}): circuit {sel['chosen'] + 1} of {len(sel['sizes'])} the "
                   f"search passed through ({sel['sizes'][sel['chosen']]} units, margin {sel['margins'][sel['chosen']]:.3f}"
                   f"{'' if sel['held'] else ', misses a --select threshold'})")
    a = r.get("attribution")
    if a:
        typer.echo(f"attribution vs exact: chose {a['chosen']}, verification dropped {len(a['dropped'])}; recovered "
                   f"predicted {a['predicted_recovered']:.3f} vs exact {a['exact_recovered']:.3f}; "
                   f"Spearman {a['spearman']:.3f}")
    if r.get("warning"):
        typer.echo(f"warning: {r['warning']}")


@app.command("diff")
def diff_cli(
    a: Path = typer.Argument(..., help="A circuit JSON from comp circuit --json."),
    b: Path = typer.Argument(..., help="Another circuit JSON."),
    json_path: Path | None = JSON,
) -> None:
    """Shared and different nodes and edges of two circuits, Jaccard overlap, roles matched."""
    _diff(a, b, json_path)


@user_errors
def _diff(a: Path, b: Path, json_path: "Path | None") -> None:
    check_output_path(json_path, (".json",))
    from comp.circuits.circuit_diff import check_circuit, diff_circuits

    circuits = [check_circuit(_read(p), str(p)) for p in (a, b)]
    d = diff_circuits(*circuits)
    print_table([{"": "nodes", "shared": len(d.shared_nodes), "only A": len(d.only_a_nodes), "only B": len(d.only_b_nodes),
                  "jaccard": d.node_jaccard},
                 {"": "edges", "shared": len(d.shared_edges), "only A": len(d.only_a_edges), "only B": len(d.only_b_edges),
                  "jaccard": d.edge_jaccard}], ["", "shared", "only A", "only B", "jaccard"], title=f"A = {d.a}, B = {d.b}")
    for what, items in [("only in A", d.only_a_nodes), ("only in B", d.only_b_nodes)]:
        if items:
            typer.echo(f"nodes {what}: {', '.join(items)}")
    for m in d.roles_matched:
        typer.echo(f"role matched: {m['a']} (A) ~ {m['b']} (B), receivers overlap {m['overlap']:.2f}")
    write_outputs(asdict(d), json_path)


@app.command("shared")
def shared_cli(
    circuits: list[Path] = typer.Argument(..., help="Two or more circuit JSONs from comp circuit --json "
                                                   "(e.g. one per --member of a multi-task run)."),
    names: str = typer.Option("", help="A name per circuit, comma-separated (default: its member task, else its run)."),
    json_path: Path | None = JSON,
) -> None:
    """Components shared by all circuits, by some, or specific to one (nodes, components, edges)."""
    _shared(circuits, names, json_path)


@user_errors
def _shared(paths: list[Path], names: str, json_path: "Path | None") -> None:
    check_output_path(json_path, (".json",))
    from comp.circuits.circuit_diff import check_circuit
    from comp.circuits.circuit_shared import shared_components

    wanted = [x.strip() for x in names.split(",")] if names else None
    s = shared_components([check_circuit(_read(p), str(p)) for p in paths], wanted)
    for grain in ("components", "nodes"):
        rows = [{"unit": r.unit, **{n: "x" if n in r.used_by else "" for n in s.names},
                 "sharing": {"shared": "shared", "partial": "+".join(r.used_by)}.get(r.sharing, f"only {r.used_by[0]}")}
                for r in getattr(s, grain)]
        print_table(rows, ["unit", *s.names, "sharing"], title=f"{grain} kept by each circuit ({s.level}-level circuits)")
    counts = [{"": f"{grain} kept", **{n: s.sizes[n][grain] for n in s.names}} for grain in ("components", "nodes", "edges")]
    print_table(counts, ["", *s.names], title="circuit sizes (logits left out)")
    columns = list(dict.fromkeys(k for c in s.counts.values() for k in c))
    print_table([{"grain": g, **{k: c.get(k, 0) for k in columns}} for g, c in s.counts.items()], ["grain", *columns],
                title="units kept by every circuit (shared), by several, or by one only")
    print_table([asdict(p) for p in s.pairs], ["a", "b", "component_jaccard", "node_jaccard", "edge_jaccard"],
                title="pairwise overlap (Jaccard)")
    write_outputs(s.to_dict(), json_path)


def _read(path: Path) -> dict:
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise CompError(f"no such circuit file {path}; write one with comp circuit --ckpt RUN --json {path}") from None
    except OSError:  # a directory, or a path through a file
        raise CompError(f"cannot read circuit file {path}; give a file written by comp circuit --json") from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise CompError(f"{path} is not JSON; give a file written by comp circuit --json") from None


@app.command("score")
def score_cli(
    circuit: Path = typer.Argument(..., help="A circuit JSON from comp circuit --json."),
    ckpt: str = typer.Option("", help="Run to score it on (default: the run it was found on)."),
    lengths: str = ANALYSIS_LENGTHS,
    n: int = sequences("Sequences per length (and as many reference sequences unless --ref-n)."),
    ref_n: int | None = typer.Option(None, show_default=False,
                                     help="Reference sequences per length (default: as the circuit was found with "
                                          "comp circuit --ref-n; 0: as many as --n)."),
    seed: int = ANALYSIS_SEED,
    device: str = DEVICE,
    json_path: Path | None = JSON,
) -> None:
    """A found circuit's faithfulness and completeness at other lengths (e.g. found at 1-16, scored at 64)."""
    _score(circuit, ckpt, lengths, n, seed, device, json_path, ref_n)


@user_errors
def _score(path: Path, ckpt: str, lengths: str, n: int, seed: int, device: str, json_path: "Path | None",
           ref_n: "int | None" = None) -> None:
    check_output_path(json_path, (".json",))
    from comp.circuits.circuit_score import score_circuit_run

    circuit = _read(path)
    ckpt = ckpt or str(circuit.get("ckpt") or circuit.get("run", ""))  # where it was found (older JSON: the run's name)
    r = score_circuit_run(ckpt, circuit, lengths, n, seed, device, ref_n).to_dict()
    print_scores(r, f"{r['run']}: {r['level']} circuit of {r['circuit_run']} (found at {_span(r['found_lengths'])}), "
                    f"{r['n_units']}/{r['n_units_total']} kept, scored at {_span(r['lengths'])}")
    write_outputs(r, json_path, run=ckpt)


def _span(lengths: list[int]) -> str:
    return f"{min(lengths)}-{max(lengths)}" if len(lengths) > 1 else ",".join(map(str, lengths))
