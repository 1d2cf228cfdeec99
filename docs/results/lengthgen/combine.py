"""Merge several ``comp lengthgen`` results into one table and chart (the headline figure).

Each argument is ``RESULTS.json[:LABEL]``; ``LABEL`` renames that study's encodings (one
encoding per study when given), so studies that differ in settings other than ``--pe``
(``--set model.attn_jitter=0.5``, ...) can sit side by side. The studies must share the
task, training lengths and test lengths.

    python docs/results/lengthgen/combine.py main/results.json \\
        "fix_jitter_logn/results.json:t5+coupling, logn, jitter" --out headline
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from comp.io import write_text
from comp.lengthgen.report import LABELS, figure, multiples_rows
from comp.views.plots import write_png


def merge(specs: list[str]) -> dict:
    """One results dict holding every study's rows, encodings relabelled where asked."""
    merged: dict | None = None
    for spec in specs:
        path, _, label = spec.partition(":")
        results = json.loads(Path(path).read_text())
        study, rows = results["study"], results["rows"]
        if label:
            if len(study["pes"]) != 1:
                raise SystemExit(f"{path} holds {len(study['pes'])} encodings; a label renames a single one")
            rows = [{**r, "pe": label} for r in rows]
            pes = [label]
        else:
            pes = list(study["pes"])
        if merged is None:
            merged = {"study": {**study, "pes": pes}, "rows": list(rows)}
            continue
        for key in ("task", "train_lengths", "test_lengths"):
            if study[key] != merged["study"][key]:
                raise SystemExit(f"{path} has {key} {study[key]!r}, the first study {merged['study'][key]!r}")
        merged["study"]["pes"] += pes
        merged["rows"] += rows
    return merged


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("studies", nargs="+")
    parser.add_argument("--out", required=True, help="writes OUT.md and OUT.png")
    args = parser.parse_args()
    merged = merge(args.studies)
    out = [f"# Length generalization, merged: {', '.join(args.studies)}", "",
           "Cells: mean ± standard deviation over seeds [worst seed]; per-sequence exact match. Each study's "
           "command is in its own report.md.", ""]
    for metric in ("acc_generate", "acc_answer"):
        rows = multiples_rows(merged, metric)
        head = list(rows[0])
        out += [f"## {LABELS[metric]}", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        out += ["| " + " | ".join(str(r[k]) for k in head) + " |" for r in rows] + [""]
    write_text(Path(args.out + ".md"), "\n".join(out))
    write_png(figure(merged), Path(args.out + ".png"))


if __name__ == "__main__":
    main()
