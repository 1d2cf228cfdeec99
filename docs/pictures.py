"""Make the README pictures from a trained run: accuracy by length and the probe heatmap.

    python docs/pictures.py --ckpt parity-rotary-s0 --out docs/img

Writes ``accuracy_by_length.png`` and ``probe_s_t.png`` (plotly figures exported with
:func:`comp.views.plots.write_png`, which needs kaleido and a local Chromium).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from comp.evaluation import evaluate_run
from comp.probes import probe_run
from comp.views.plots import accuracy_by_length, write_png
from comp.views.probes import probe_heatmap


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ckpt", default="parity-rotary-s0", help="run name under runs/ or a path")
    parser.add_argument("--out", type=Path, default=Path("docs/img"), help="folder for the PNGs")
    parser.add_argument("--lengths", default="1-64", help="evaluation lengths")
    parser.add_argument("--n", type=int, default=256, help="evaluation sequences per length")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    result = evaluate_run(args.ckpt, args.lengths, n=args.n)
    train_max = int(str(result["train_lengths"]).split("-")[-1])
    fig = accuracy_by_length(result["rows"], title=f"{result['run']}: accuracy by length", train_max=train_max)
    write_png(fig, args.out / "accuracy_by_length.png", width=900, height=450)
    probe = probe_run(args.ckpt, "s_t", n_train=512, n_test=512, seed=0)  # the settings the committed picture used
    write_png(probe_heatmap(probe, title=f"{probe['run']}: linear probe for s_t"), args.out / "probe_s_t.png",
              width=900, height=480)
    print(f"wrote {args.out}/accuracy_by_length.png and {args.out}/probe_s_t.png")


if __name__ == "__main__":
    main()
