"""The library stands without its CLI: no module outside ``comp/cli/`` (nor a notebook,
a benchmark or a docs script) imports ``comp.cli``, at module level or inside a function."""

from __future__ import annotations

import ast
from pathlib import Path

import comp

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = Path(comp.__file__).resolve().parent


def imported_modules(path: Path) -> set[str]:
    """Every module an ``import`` or ``from ... import`` anywhere in the file names."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
    return names


def cli_importers(files: list[Path]) -> list[str]:
    return sorted(str(f.relative_to(ROOT)) for f in files
                  if any(m == "comp.cli" or m.startswith("comp.cli.") for m in imported_modules(f)))


def test_the_walk_finds_cli_imports():
    """The check itself: the CLI's own modules do import comp.cli, and the walk sees it."""
    assert "comp.cli.common" in imported_modules(PACKAGE / "cli" / "train.py")
    assert "comp.cli.main.app" in imported_modules(PACKAGE / "cli" / "argv.py")  # an import inside a function


def test_no_library_module_imports_the_cli():
    library = [p for p in PACKAGE.rglob("*.py") if "cli" not in p.relative_to(PACKAGE).parts[:1]
               and p.name != "__main__.py"]
    assert len(library) > 40
    assert cli_importers(library) == []


def test_no_notebook_benchmark_or_docs_script_imports_the_cli():
    scripts = [*(ROOT / "notebooks").glob("*.py"), *(ROOT / "benchmarks").glob("*.py"), *(ROOT / "docs").rglob("*.py")]
    assert len(scripts) >= 3
    assert cli_importers(scripts) == []
