"""The GPU check: one prepared script for a freshly rented CUDA machine (~5 minutes on an H200).

    bash benchmarks/gpu_check.sh            # or: python -m benchmarks.gpu_check
    OUT=/some/dir bash benchmarks/gpu_check.sh

Runs, most important first, each step in its own process with its own time limit, all
within one overall budget (``--budget``, default 330 s; a step that would not fit is
skipped and says so):

1. ``env``: torch, CUDA and the GPU's name;
2. ``bench``: ``python -m benchmarks --only paper,throughput,seeds`` on the GPU (bf16
   autocast, no compile): comp against the paper-shape transformer and a plain loop, 32
   seeds packed against 1;
   (run third: the whole-step path goes first);
3. ``train_compile_step`` (second): a short ``comp train parity --set train.compile_step=true``
   (the whole step compiled, CUDA graphs: comp.train.graphed); if it runs,
   ``solve_compile_step`` (time to solve with it, goal <= 5 s) and later
   ``paper_compile_step`` (throughput with it, after ``seeds_max``);
4. ``seeds_max``: the most seeds packed in one process within 4x one seed's wall time;
5. ``train_compile``: a short ``comp train parity --compile`` (AMP + torch.compile); if it
   fails, ``train_eager`` reruns it without compile and later compile steps are skipped;
6. ``syncs``: host synchronizations per step in the hot loops (CUDA sync debug mode);
7. ``solve``: time to solve and peak GPU memory of the default ``comp train parity`` run;
8. ``throughput_compile``, ``seeds_compile``: those benchmarks again with ``--compile``;
9. ``patching``: the batched patching sweep on the GPU.

Writes ``gpu_check.json`` (every step: command, status, seconds, output tail; the
benchmark rows; the sync counts) and ``gpu_check.log`` (all output) into ``$OUT`` (or
``--out``, default ``./gpu-check``). ``--device cpu --quick`` rehearses it on a CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


@dataclass
class Step:
    name: str
    cmd: list[str]
    limit_s: int  # its own time limit
    status: str = "pending"  # ok | failed | timeout | skipped
    rc: int | None = None
    seconds: float = 0.0
    note: str = ""
    tail: list[str] = field(default_factory=list)


class Check:
    """Runs steps in order within one budget; records everything as it goes."""

    def __init__(self, out: Path, budget_s: float):
        self.out = out
        self.deadline = time.monotonic() + budget_s
        self.budget_s = budget_s
        self.steps: list[Step] = []
        self.env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(REPO),
                                                                  os.environ.get("PYTHONPATH", "")])}
        out.mkdir(parents=True, exist_ok=True)
        self.log = open(out / "gpu_check.log", "a")

    def run(self, name: str, cmd: list[str], limit_s: int, min_s: int = 20) -> Step:
        step = Step(name, cmd, limit_s)
        self.steps.append(step)
        left = self.deadline - time.monotonic()
        if left < min_s:
            step.status, step.note = "skipped", f"out of time ({left:.0f} s left of the {self.budget_s:.0f} s budget)"
            self.save()
            return step
        limit = int(min(limit_s, left))
        shown = " ".join(c if "\n" not in c else "<script>" for c in cmd)
        print(f"[gpu_check] {name}: {shown} (limit {limit} s)", file=sys.stderr, flush=True)
        self.log.write(f"\n===== {name}: {shown}\n")
        self.log.flush()
        start = time.monotonic()
        try:
            proc = subprocess.run(cmd, cwd=REPO, env=self.env, capture_output=True, text=True, timeout=limit)
            output, step.rc = proc.stdout + proc.stderr, proc.returncode
            step.status = "ok" if proc.returncode == 0 else "failed"
        except subprocess.TimeoutExpired as e:
            output = (e.stdout or b"").decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
            output += (e.stderr or b"").decode(errors="replace") if isinstance(e.stderr, bytes) else (e.stderr or "")
            step.status, step.note = "timeout", f"killed after {limit} s"
        step.seconds = round(time.monotonic() - start, 1)
        step.tail = output.strip().splitlines()[-25:]
        self.log.write(output)
        self.log.write(f"===== {name}: {step.status} in {step.seconds} s\n")
        self.log.flush()
        print(f"[gpu_check] {name}: {step.status} in {step.seconds} s", file=sys.stderr, flush=True)
        self.save()
        return step

    def skip(self, name: str, why: str) -> None:
        self.steps.append(Step(name, [], 0, status="skipped", note=why))
        self.save()

    def save(self, **extra) -> None:
        path = self.out / "gpu_check.json"
        data = json.loads(path.read_text()) if path.exists() else {}
        data.update(extra)
        data["budget_s"] = self.budget_s
        data["steps"] = [asdict(s) for s in self.steps]
        path.write_text(json.dumps(data, indent=2) + "\n")


def last_json(step: Step) -> "dict | None":
    """The JSON object a step printed last, if any."""
    for line in reversed(step.tail):
        if line.startswith("{"):
            try:
                return json.loads(line)
            except json.JSONDecodeError:
                return None
    return None


def main(argv: "list[str] | None" = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--quick", action="store_true", help="tiny sizes (a rehearsal, e.g. on a CPU)")
    parser.add_argument("--budget", type=float, default=330.0, help="seconds for everything (default 330)")
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT") or "gpu-check"))
    args = parser.parse_args(argv)
    py, dev = sys.executable, args.device
    quick = ["--quick"] if args.quick else []
    out = args.out.resolve()
    check = Check(out, args.budget)

    env = check.run("env", [py, "-c", ENV_SCRIPT], 60, min_s=5)
    check.save(env=last_json(env))
    if env.status != "ok" or (dev.startswith("cuda") and not (last_json(env) or {}).get("cuda")):
        check.save(summary="no usable CUDA device: nothing else run")
        return 1

    bench = [py, "-m", "benchmarks", "--device", dev, *quick]
    steps = ["--steps", "20", "--d-model", "16", "--train-lengths", "1-3", "--n-ctx", "32"] if args.quick else \
        ["--steps", "300"]
    train = [py, "-m", "comp", "train", "parity", "--device", dev, *steps, "--quiet", "--out", str(out / "runs")]
    # the new path first: the whole step compiled (CUDA graphs), a short run, then the default run to solve
    whole = check.run("train_compile_step", [*train, "--set", "train.compile_step=true", "--name", "step-s0"], 120,
                      min_s=45)
    if whole.status == "ok":
        check.run("solve_compile_step", [*bench, "--compile-step", "--only", "solve",
                                         "--json", str(out / "bench_solve_compile_step.json")], 90, min_s=30)
    else:
        check.skip("solve_compile_step", "train.compile_step failed in train_compile_step")
    check.run("bench", [*bench, "--only", "paper,throughput,seeds", "--json", str(out / "bench.json")], 150)
    check.run("seeds_max", [*bench, "--only", "seeds-max", "--json", str(out / "bench_seeds_max.json")], 180,
              min_s=45)
    compiled = check.run("train_compile", [*train, "--compile", "--name", "compile-s0"], 150, min_s=60)
    if compiled.status != "ok":
        check.run("train_eager", [*train, "--no-compile", "--name", "eager-s0"], 90, min_s=30)
        compiled.note = (compiled.note + "; " if compiled.note else "") + "compile failed: see train_eager"
    if whole.status == "ok":
        check.run("paper_compile_step", [*bench, "--compile-step", "--only", "paper,throughput",
                                         "--json", str(out / "bench_paper_compile_step.json")], 120, min_s=45)

    syncs = check.run("syncs", [py, "-m", "benchmarks.syncs", "--device", dev], 60)
    check.save(syncs=last_json(syncs))

    check.run("solve", [*bench, "--only", "solve", "--json", str(out / "bench_solve.json")], 120, min_s=40)

    for name in ["throughput", "seeds"]:
        if compiled.status == "ok":
            check.run(f"{name}_compile", [*bench, "--compile", "--only", name,
                                          "--json", str(out / f"bench_{name}_compile.json")], 150, min_s=60)
        else:
            check.skip(f"{name}_compile", "torch.compile failed in train_compile: compiled benchmark skipped")

    check.run("patching", [*bench, "--only", "patching", "--json", str(out / "bench_patching.json")], 60)

    rows = []
    for name in ["bench.json", "bench_solve_compile_step.json", "bench_paper_compile_step.json",
                 "bench_seeds_max.json", "bench_solve.json", "bench_throughput_compile.json",
                 "bench_seeds_compile.json", "bench_patching.json"]:
        if (out / name).exists():
            rows += [{**r, "file": name} for r in json.loads((out / name).read_text())["rows"]]
    failed = [s.name for s in check.steps if s.status in ("failed", "timeout")]
    check.save(rows=rows, summary=f"{len(check.steps)} steps, failed: {failed or 'none'}")
    print(json.dumps({"out": str(out), "failed": failed, "rows": [(r["bench"], r["ratio"], r["comp"]) for r in rows]}))
    return 1 if failed else 0


ENV_SCRIPT = """
import json, torch, transformer_lens
info = {"torch": torch.__version__, "cuda": torch.cuda.is_available(), "cuda_version": torch.version.cuda}
if torch.cuda.is_available():
    info["gpu"] = torch.cuda.get_device_name(0)
    info["bf16"] = torch.cuda.is_bf16_supported()
print(json.dumps(info))
"""


if __name__ == "__main__":
    sys.exit(main())
