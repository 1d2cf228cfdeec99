"""comp's patching sweeps against the same sweeps at another git revision, in one process.

A change to the sweeps' fast paths moves their time by a few per cent, less than a loaded
machine moves it between two runs. This script times both versions in the same process,
in alternating rounds: the other revision's ``src/comp`` is exported (``git archive``)
into a temporary directory as a package named ``comp_ab`` (its ``comp.`` imports renamed),
both sweeps run on the same model, pairs and clean cache, and each version's best and
median process-time seconds are printed with their ratio (> 1: this checkout is faster).
The results must agree (1e-10 on the float64 random model).

    python -m benchmarks.patching_ab                       # against main, every sweep
    python -m benchmarks.patching_ab --rev HEAD~1 --sweeps mlp_out --rounds 40
"""

from __future__ import annotations

import argparse
import importlib
import io
import os
import re
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import torch

from benchmarks.patching import random_model
from comp.circuits import patching
from comp.tasks import make_task

PACKAGE = "comp_ab"


def export(rev: str, root: Path) -> None:
    """``src/comp`` at ``rev`` written to ``root/comp_ab`` with its imports of ``comp`` renamed."""
    repo = Path(__file__).resolve().parents[1]
    data = subprocess.run(["git", "-C", str(repo), "archive", rev, "src/comp"], check=True, capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        for member in tar.getmembers():
            if not member.isfile():
                continue
            path = root / PACKAGE / Path(member.name).relative_to("src/comp")
            path.parent.mkdir(parents=True, exist_ok=True)
            text = tar.extractfile(member).read()
            if path.suffix == ".py":
                text = re.sub(rb"(?<![\w.])comp\.", PACKAGE.encode() + b".", text)
                text = re.sub(rb"(?<![\w.])(from|import) comp\b", rb"\1 " + PACKAGE.encode(), text)
            path.write_bytes(text)


def compare(other, sweeps: list[str], n: int, rounds: int, reps: int = 4) -> dict:
    """Best and median seconds of each sweep, this checkout (``ours``) and ``other``'s
    ``circuits.patching`` module, alternating which runs first each round."""
    model = random_model()
    pair = patching.make_pair(make_task("parity"), 16, n, seed=0)
    metric = patching.LogitDiff.for_pair(model, pair)
    tokens, out = pair.corrupted.tokens, {}
    with torch.no_grad():
        _, clean = model.run_with_cache(pair.clean.tokens)
        for name in sweeps:
            fns = {"ours": patching.SWEEPS[name], "theirs": other.SWEEPS[name]}
            diff = (fns["ours"](model, tokens, clean, metric) - fns["theirs"](model, tokens, clean, metric)).abs().max()
            assert diff < 1e-10, f"{name}: the two versions differ by {diff:.1e}"
            times: dict[str, list[float]] = {"ours": [], "theirs": []}
            for r in range(rounds):
                for side in ("ours", "theirs") if r % 2 else ("theirs", "ours"):
                    for _ in range(reps):
                        t0 = time.process_time()
                        fns[side](model, tokens, clean, metric)
                        times[side].append(time.process_time() - t0)
            best = {k: min(v) for k, v in times.items()}
            median = {k: statistics.median(v) for k, v in times.items()}
            out[name] = {"best": best, "median": median, "ratio_best": best["theirs"] / best["ours"],
                         "ratio_median": median["theirs"] / median["ours"]}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rev", default="main", help="the git revision to compare against")
    ap.add_argument("--sweeps", default=",".join(patching.SWEEPS), help="comma-separated: " + ", ".join(patching.SWEEPS))
    ap.add_argument("--n", type=int, default=32, help="clean/corrupted pairs")
    ap.add_argument("--rounds", type=int, default=25, help="alternating rounds (4 calls per version each)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        export(args.rev, Path(tmp))
        sys.path.insert(0, tmp)
        other = importlib.import_module(f"{PACKAGE}.circuits.patching")
        r = compare(other, args.sweeps.split(","), args.n, args.rounds)
    print(f"this checkout against {args.rev}: {args.n} pairs, 1 thread, process time, load average {os.getloadavg()[0]:.1f}")
    for name, s in r.items():
        print(f"{name:9s}: {args.rev} best {s['best']['theirs'] * 1e3:6.2f} ms, median {s['median']['theirs'] * 1e3:6.2f} ms | "
              f"this best {s['best']['ours'] * 1e3:6.2f} ms, median {s['median']['ours'] * 1e3:6.2f} ms | "
              f"ratio best {s['ratio_best']:.3f}, median {s['ratio_median']:.3f}")


if __name__ == "__main__":
    main()
