"""Choose the 10-seed study's recipe on validation lengths 24-48 only, from the 3-seed studies.

    python docs/results/lengthgen/tenseeds/select_recipe.py --out docs/results/lengthgen/tenseeds/selection.json

Candidates: the five t5+coupling settings of the 3-seed study (seeds 0, 1, 2; 256 sequences
per length; free generation). Only their rows at lengths 24-48 are read; the rule is
comp.lengthgen.select's max-min-acc (worst seed and length, then mean, then the order below).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path

from comp.lengthgen.select import select

HERE = Path(__file__).resolve().parent.parent
CANDIDATES = {  # name -> the 3-seed study's report directory (order: ties go to the earlier)
    "no logn, no jitter": "fix_plain",
    "logn, no jitter": "fix_logn",
    "jitter 0.75, no logn": "fix_jitter75",
    "logn, jitter 0.5": "fix_jitter_logn",
    "logn, jitter 0.75": "fix_jitter75_logn",
}
VAL = list(range(24, 49))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    rows = []
    for name, folder in CANDIDATES.items():
        data = json.loads((HERE / folder / "results.json").read_text())
        rows += [{**r, "setting": name, "sets": data["study"]["sets"]} for r in data["rows"] if r["length"] in VAL]
    chosen = select(rows, list(CANDIDATES), VAL, "max-min-acc", key="setting")
    sets = next(r["sets"] for r in rows if r["setting"] == chosen.chosen)
    args.out.write_text(json.dumps({**asdict(chosen), "sets": sets}, indent=2) + "\n")
    print(chosen.why)


if __name__ == "__main__":
    main()
