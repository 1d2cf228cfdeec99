"""Tables of result rows, printed with rich (what every command prints, and the notebooks)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, is_dataclass
from typing import Any

from rich.console import Console
from rich.table import Table

console = Console()


def fmt(value: Any) -> str:
    """One cell: ``-`` for missing, floats to three decimals."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def print_table(rows: Sequence[Any], columns: Sequence[str], title: str = "", headers: "Sequence[str] | None" = None) -> None:
    """Print rows (dicts or result dataclasses) as a rich table (to stdout)."""
    rows = [asdict(r) if is_dataclass(r) else r for r in rows]
    table = Table(title=title or None)
    for c, h in zip(columns, headers or columns):
        table.add_column(h, justify="right" if rows and isinstance(rows[0].get(c), (int, float)) else "left")
    for r in rows:
        table.add_row(*(fmt(r.get(c)) for c in columns))
    console.print(table)
