"""Where training reports go: ``metrics.jsonl``, a rich progress bar, and wandb; and the
logging window that keeps running sums on the device between reports.

wandb is optional and never fatal: offline unless ``WANDB_MODE=online`` (and a login)
says otherwise; if it cannot start or log, training goes on without it.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from comp.tasks.vocab import PAD


class MetricsLog:
    """Append-only ``metrics.jsonl``; on resume, rows past the checkpoint are dropped."""

    def __init__(self, path: Path):
        self.path = path

    def truncate_after(self, step: int) -> None:
        if not self.path.exists():
            return
        keep = []
        for line in self.path.read_text().splitlines():
            try:
                if json.loads(line).get("step", 0) <= step:
                    keep.append(line)
            except json.JSONDecodeError:
                break  # a line cut by a kill: drop it and everything after
        from comp.io import write_text

        write_text(self.path, "".join(k + "\n" for k in keep))

    def write(self, row: dict) -> None:
        with open(self.path, "a") as f:
            f.write(json.dumps(row) + "\n")


class Window:
    """Loss and token sums of the current logging window, kept on the device.

    ``add`` is called every step and never synchronizes with the host; ``flush`` reads
    the sums once per report. With ``n`` seeds the sums are vectors ``[n]``. The clock
    can be paused (evaluation, checkpoints) so that ``dt`` counts training time only.
    """

    def __init__(self, device: torch.device, n: "int | None" = None):
        self.device = device
        shape = () if n is None else (n,)
        self.loss = torch.zeros(shape, device=device)  # [] or [seeds]
        self.tokens = torch.zeros(shape, device=device, dtype=torch.long)  # [] or [seeds]
        self.steps = 0
        self.banked = 0.0  # seconds of this window before the last pause
        self.start: "float | None" = time.perf_counter()

    def add(self, loss: torch.Tensor, tokens: torch.Tensor) -> None:
        """Add one step: ``loss`` [] or [seeds], ``tokens`` [..., batch, pos] (PAD not counted)."""
        self.loss += loss.detach()
        self.tokens += (tokens != PAD).sum((-2, -1))
        self.steps += 1

    def select(self, rows: list[int]) -> None:
        """Keep the sums of these seeds only (seeds that finished leave the window)."""
        self.loss = self.loss[rows]
        self.tokens = self.tokens[rows]

    def pause(self) -> None:
        """Stop the clock once the device has done the work queued so far."""
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        if self.start is not None:
            self.banked += time.perf_counter() - self.start
            self.start = None

    def resume(self) -> None:
        if self.start is None:
            self.start = time.perf_counter()

    def flush(self) -> "tuple[list[float], list[int], float]":
        """Mean loss and tokens per seed (one host sync), and the window's training seconds; then reset."""
        loss = (self.loss / max(self.steps, 1)).reshape(-1).tolist()
        tokens = self.tokens.reshape(-1).tolist()
        self.pause()
        dt = self.banked
        self.loss.zero_()
        self.tokens.zero_()
        self.steps, self.banked = 0, 0.0
        self.resume()
        return loss, tokens, dt


class ProgressBar:
    """A rich progress bar (step, loss, accuracy, tokens/s, ETA), or nothing with ``quiet``."""

    def __init__(self, total: int, start: int, name: str, quiet: bool):
        self.quiet = quiet
        if quiet:
            return
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}"),
            TextColumn("acc {task.fields[acc]}"),
            TextColumn("{task.fields[tps]} tok/s"),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=False,
        )
        self.task = self.progress.add_task(name, total=total, completed=start, loss="-", acc="-", tps="-")
        self.progress.start()

    def update(self, step: int, **fields) -> None:
        if not self.quiet:
            self.progress.update(self.task, completed=step, **fields)

    def close(self) -> None:
        if not self.quiet:
            self.progress.stop()


def wandb_id(group: str, name: str) -> str:
    """The wandb run id of a run: prefixed by its group (grid runs of different grids share
    names), with the characters wandb reserves (``:;,#?/'``) and whitespace replaced."""
    return re.sub(r"[:;,#?/'\\\s]", "-", f"{group}.{name}" if group else name)


class WandbLogger:
    """Thin, failure-proof wrapper over a wandb run."""

    def __init__(
        self, enabled: bool, project: str, group: str, name: str, config: dict, run_dir: Path, resume: bool,
        concurrent: bool = False,
    ):
        """``concurrent``: other runs stay open in this process (multi-seed training)."""
        self.run = None
        if not enabled:
            return
        try:
            import wandb

            os.environ.setdefault("WANDB_SILENT", "true")
            mode = os.environ.get("WANDB_MODE", "offline")
            self.run = wandb.init(
                project=project,
                group=group or None,
                name=name,
                id=wandb_id(group, name),
                config=config,
                dir=str(run_dir),
                mode=mode,
                resume="allow" if resume else None,
                reinit="create_new" if concurrent else "finish_previous",
            )
        except Exception as e:  # wandb must never stop training
            self._fail(e)

    def _fail(self, e: Exception) -> None:
        reason = str(e).strip().splitlines()[0] if str(e).strip() else ""
        print(f"warning: wandb disabled ({type(e).__name__}: {reason}); training continues", file=sys.stderr)
        self.run = None

    def log(self, row: dict, step: int) -> None:
        if self.run is None:
            return
        try:
            self.run.log(row, step=step)
        except Exception as e:
            self._fail(e)

    def log_table(self, key: str, rows: list[dict], step: int) -> None:
        if self.run is None or not rows:
            return
        try:
            import wandb

            cols = list(rows[0])
            self.run.log({key: wandb.Table(columns=cols, data=[[r[c] for c in cols] for r in rows])}, step=step)
        except Exception as e:
            self._fail(e)

    def finish(self, summary: dict) -> None:
        if self.run is None:
            return
        try:
            self.run.summary.update(summary)
            self.run.finish()
        except Exception as e:
            self._fail(e)
