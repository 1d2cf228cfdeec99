"""Time to solve, and peak memory, of the default ``comp train parity`` run.

The run uses ``comp train parity``'s defaults (early stop once every length 1..16 holds
99% twice) in a fresh child process, so that its peak memory is its own: RSS on the CPU,
``torch.cuda.max_memory_allocated`` on a GPU. Solved means >= 99% free-generation
accuracy (greedy decoding of the whole chain of thought) at every length 1..16 in the
run's final evaluation (512 sequences per length). Seconds are wall time of the whole
run: setup, training, periodic and final evaluation.

Run alone: ``python -m benchmarks.solve --device cpu [--quick]`` prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from benchmarks.common import Options, Row
from comp.config import RunConfig, TaskConfig
from comp.runs.files import METRICS_FILE
from comp.train import train

BUDGET_S = 60.0  # the goal (issue 15): solved within a minute on a 2-core CPU
GPU_BUDGET_S = 5.0  # and within 5 seconds on one H200
MEMORY_MB = 1024.0  # the goal: peak memory under 1 GB
REPO = Path(__file__).resolve().parent.parent


def default_config(device: str, quick: bool, compile_step: bool = False) -> RunConfig:
    """``comp train parity``'s configuration (tiny sizes with ``quick``; ``--set train.compile_step=true``)."""
    cfg = RunConfig(task=TaskConfig(name="parity"))
    cfg.train.device, cfg.train.compile_step = device, compile_step
    if quick:
        cfg.model.d_model, cfg.model.n_ctx = 16, 32
        cfg.train.steps, cfg.train.batch_size, cfg.train.train_lengths = 6, 8, "1-3"
        cfg.train.eval_every, cfg.train.eval_n, cfg.train.final_eval_n, cfg.train.warmup_steps = 3, 8, 8, 2
    return cfg


def peak_rss_mb() -> float:
    """This process's peak resident memory. Linux's ``VmHWM`` starts afresh at ``exec``;
    ``ru_maxrss`` (the fallback) keeps the parent's resident size from before the fork."""
    try:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 1024
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def solve_run(device: str, quick: bool, out: Path, compile_step: bool = False) -> dict:
    """Train the default run once; its steps, seconds, accuracy and peak memory."""
    cfg = default_config(device, quick, compile_step)
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    result = train(cfg, out / "parity-default", quiet=True)
    wall = time.perf_counter() - start
    accs = [r["acc_generate"] for r in result.eval_rows]
    return {
        "steps": result.state.step,
        "stop_reason": result.state.stop_reason,
        "wall_s": wall,
        "train_s": result.state.elapsed,
        "min_acc_generate": min(accs),
        "solved": min(accs) >= 0.99,
        "lengths": cfg.train.train_lengths,
        "peak_rss_mb": peak_rss_mb(),
        "peak_cuda_mb": torch.cuda.max_memory_allocated() / 2**20 if device.startswith("cuda") else None,
    }


def last_eval(run_dir: Path) -> str:
    """Where an unfinished run stood: its last periodic evaluation."""
    path = run_dir / METRICS_FILE
    evals = [x for x in (path.read_text().splitlines() if path.exists() else []) if '"eval_min"' in x]
    try:
        last = json.loads(evals[-1]) if evals else None
    except json.JSONDecodeError:  # a line cut by the kill
        last = json.loads(evals[-2]) if len(evals) > 1 else None
    if last is None:
        return "no evaluation yet"
    return f"at step {last['step']} the lowest accuracy was {last['eval_min']:.3f}"


def bench(opts: Options) -> list[Row]:
    """Run :func:`solve_run` in a child process and report two rows: solve and memory."""
    timeout = 120 if opts.quick else (1200 if opts.device == "cpu" else 300)
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "benchmarks.solve", "--device", opts.device, "--out", tmp]
        try:
            flags = (["--quick"] if opts.quick else []) + (["--compile-step"] if opts.compile_step else [])
            proc = subprocess.run(cmd + flags, cwd=REPO, capture_output=True,
                                  text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return [Row("solve", "seconds to solve parity 1-16", goal=f"<= {BUDGET_S:.0f} s", met=False,
                        note=f"not finished within {timeout} s; {last_eval(Path(tmp) / 'parity-default')}"),
                    Row("memory", "peak memory, MB", note="run timed out")]
    if proc.returncode != 0:
        raise RuntimeError(f"solve run failed: {proc.stderr.strip().splitlines()[-1:]}")
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    on_gpu = opts.device.startswith("cuda")
    memory = r["peak_cuda_mb"] if on_gpu else r["peak_rss_mb"]
    return [
        Row(
            "solve",
            f"seconds to >= 99% free generation at lengths {r['lengths']} (comp train parity defaults"
            f"{', whole step compiled' if opts.compile_step else ''})",
            comp=r["wall_s"],
            goal=f"<= {GPU_BUDGET_S:.0f} s (H200)" if on_gpu else f"<= {BUDGET_S:.0f} s (CPU)",
            met=r["solved"] and r["wall_s"] <= (GPU_BUDGET_S if on_gpu else BUDGET_S),
            note=f"{r['steps']} steps ({r['stop_reason']}), min acc {r['min_acc_generate']:.3f}, "
            f"{r['train_s']:.0f} s of it training",
            extra=r,
        ),
        Row(
            "memory",
            "peak memory of that run, MB (" + ("torch.cuda.max_memory_allocated" if on_gpu else "process RSS") + ")",
            comp=memory,
            goal=f"<= {MEMORY_MB:.0f} MB",
            met=memory <= MEMORY_MB,
            note="CPU RSS includes Python, torch and TransformerLens" if not on_gpu else "",
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--compile-step", action="store_true")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    print(json.dumps(solve_run(args.device, args.quick, args.out, args.compile_step)))


if __name__ == "__main__":
    main()
