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
from comp.cli.options import ANALYSIS_LENGTHS, ANALYSIS_SEED, DEVICE, JSON, sequences
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
    faithfulness: float = typer.Option(0.95, help="Share of the logit difference the circuit alone must recover, in (0, 1]."),
    ablation: str = typer.Option("mean", help=f"What replaces what is outside the circuit: {', '.join(ABLATIONS)}."),
    lengths: str = ANALYSIS_LENGTHS,
    n: int = sequences("Sequences per length (and as many reference sequences)."),
    seed: int = ANALYSIS_SEED,
    split_positions: bool = typer.Option(True, help="Nodes and edges per position class (input, EoI, answer)."),
    device: str = DEVICE,
    json_path: Path | None = JSON,
    plot: Path | None = typer.Option(None, help="Draw the circuit: .html (interactive) or .png."),
) -> None:
    """Automatic circuit discovery: the smallest set of nodes or edges that keeps the model's answers."""
    if ctx.invoked_subcommand is None:
        _discover(ckpt, level, method, faithfulness, ablation, lengths, n, seed, split_positions, device, json_path, plot)


@user_errors
def _discover(ckpt, level, method, faithfulness, ablation, lengths, n, seed, split_positions, device, json_path, plot) -> None:
    if not ckpt:
        raise CompError("give --ckpt RUN to discover a circuit, or use: comp circuit diff A.json B.json")
    from comp.circuits.discover import check_options, discover_run
    from comp.views.browser import chromium
    from comp.views.circuit import circuit_figure
    from comp.views.patching import FORMATS, write_figure

    check_output_path(json_path, (".json",))
    check_output_path(plot, FORMATS)
    check_options(level, method, ablation, faithfulness)
    if plot is not None and plot.suffix.lower() == ".png":
        chromium()  # PNGs are drawn in Chromium: fail before the work when there is none
    result = discover_run(ckpt, level, method, ablation, faithfulness, lengths, n, seed, split_positions, device).to_dict()
    print_circuit(result)
    write_outputs(result, json_path, run=ckpt)
    if plot is not None:
        write_figure(circuit_figure(result), plot)
        typer.echo(f"wrote {plot}", err=True)


def print_circuit(r: dict) -> None:
    rows = [{"what": what, **r[key]} for what, key in
            [("full model", "model"), ("circuit alone (faithfulness)", "circuit"), ("circuit knocked out (completeness)", "knocked_out")]]
    print_table(rows, ["what", "acc_answer", "acc_cot", "logit_diff", "recovered"],
                title=f"{r['run']}: {r['level']} circuit by {r['method']} ({r['ablation']} ablation, target {r['target']}), "
                      f"{r['n_nodes']}/{r['n_nodes_total']} nodes, {r['n_edges']}/{r['n_edges_total']} edges, {r['seconds']:.1f} s")
    kept = sorted(r["effects"].items(), key=lambda kv: -kv[1])
    print_table([{"kept": k, "effect": v} for k, v in kept[:20]], ["kept", "effect"],
                title="kept units: drop in recovered logit difference when each alone is removed from the circuit")
    if len(kept) > 20:
        console.print(f"{len(kept) - 20} more kept units; --json has every one")
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


def _read(path: Path) -> dict:
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise CompError(f"no such circuit file {path}; write one with comp circuit --ckpt RUN --json {path}") from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise CompError(f"{path} is not JSON; give a file written by comp circuit --json") from None
