"""``python -m benchmarks [--device cpu|cuda] [--quick] [--only a,b] [--skip a,b] [--compile] [--compile-step] [--json PATH]``."""

from __future__ import annotations

import argparse
import shlex
import sys
from datetime import datetime, timezone

import torch
from rich.console import Console
from rich.table import Table

from benchmarks.common import Options, Row, machine
from benchmarks.suite import BENCHMARKS, run, select
from comp.io import write_json

COLUMNS = ["benchmark", "comp", "baseline", "ratio", "goal", "met", "measure", "note"]


def figure(value: "float | None") -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3g}"


def table_rows(rows: list[Row]) -> list[dict]:
    return [
        {
            "benchmark": r.bench,
            "measure": r.measure,
            "comp": figure(r.comp),
            "baseline": figure(r.baseline),
            "ratio": figure(r.ratio),
            "goal": r.goal,
            "met": {True: "yes", False: "NO", None: "-"}[r.met],
            "note": r.note,
        }
        for r in rows
    ]


def print_rows(rows: list[Row], title: str) -> None:
    """The one table: figures right-aligned, descriptions last (wide when not a terminal)."""
    table = Table(title=title)
    for c in COLUMNS:
        table.add_column(c, justify="right" if c in ("comp", "baseline", "ratio") else "left")
    for r in table_rows(rows):
        table.add_row(*(r[c] for c in COLUMNS))
    Console(width=None if sys.stdout.isatty() else 200).print(table)


def parse_args(argv: "list[str] | None" = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu",
                        help="cpu or cuda (default: cuda when present)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks every path, measures nothing")
    parser.add_argument("--only", default="", help=f"comma-separated subset of: {', '.join(BENCHMARKS)}")
    parser.add_argument("--skip", default="", help="comma-separated benchmarks to leave out")
    parser.add_argument("--compile", action="store_true", help="torch.compile comp and the baselines (CUDA)")
    parser.add_argument("--compile-step", action="store_true",
                        help="comp compiles its whole training step (train.compile_step; CUDA graphs on a GPU)")
    parser.add_argument("--json", dest="json_path", default=None, help="also write the results here")
    return parser.parse_args(argv)


def main(argv: "list[str] | None" = None) -> int:
    args = parse_args(argv)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit("error: --device cuda asked for but CUDA is not available; use --device cpu")
    names = select([n for n in args.only.split(",") if n], [n for n in args.skip.split(",") if n])
    opts = Options(device=args.device, quick=args.quick, compile=args.compile, compile_step=args.compile_step)
    info = machine(opts.torch_device)
    command = "python -m benchmarks " + shlex.join(sys.argv[1:] if argv is None else argv)
    print(f"{command}\n{info}", file=sys.stderr)
    rows: list[Row] = []
    for name in names:
        rows += run(opts, [name], progress=lambda name: print(f"running {name} ...", file=sys.stderr))
        if args.json_path:  # after each benchmark: a run cut short keeps what it measured
            write_json(args.json_path, {
                "command": command,
                "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "machine": info,
                "options": vars(args),
                "rows": [r.as_dict() for r in rows],
            })
    print_rows(rows, title=f"comp benchmarks ({opts.device}{', quick' if opts.quick else ''})")
    return 1 if any(r.measure == "failed" for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
