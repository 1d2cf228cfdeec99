"""A saved circuit's faithfulness length by length (which training lengths does it fail?).

    python docs/results/circuits/perlength.py C.json RUN [LENGTHS]   # -> C-perlength.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from comp.circuits.circuit_score import score_circuit
from comp.circuits.data import analysis_groups, load_for_analysis
from comp.config import EVAL_SEED

N = 32  # sequences per length, as comp circuit


def main(path: Path, ckpt: str, lengths: str = "") -> None:
    circuit = json.loads(path.read_text())
    run, wanted = load_for_analysis(ckpt, lengths)
    out = {}
    for length in wanted:
        r = score_circuit(run.model, analysis_groups(run.task, [length], N, EVAL_SEED), circuit)
        out[length] = {k: r[k].__dict__ for k in ("model", "circuit", "knocked_out")}
        c = r["circuit"]
        print(f"length {length}: circuit answer {c.acc_answer:.3f}, whole CoT {c.acc_cot:.3f}, recovered {c.recovered:.3f}", flush=True)
    path.with_name(path.stem + "-perlength.json").write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else "")
