"""Run the shell examples of README.md and docs/*.md, shrunk to tiny sizes.

A fenced block is a shell example when its info string starts with ``bash`` (or ``sh``,
``shell``, ``console``). It runs unless the info string says ``no-run: <reason>`` (GitHub
highlights by the first word only), e.g. ```` ```bash no-run: needs Slurm ````. A runnable
block holds only ``comp`` lines (``\\``-continued, ``# comments`` allowed); each runs
in-process through the CLI after :func:`tiny` rewrites its sizes (steps, model width,
sequences, lengths, seeds, encodings), in the file's scratch directory, one block after
another as a reader would. Grid files the lines name are replaced by a one-run copy.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
SHELLS = ("bash", "sh", "shell", "console")


@dataclass
class Block:
    path: Path
    line: int  # where the block starts in its file (1-based)
    lang: str
    info: str  # the rest of the info string
    body: str

    @property
    def runs(self) -> bool:
        return self.lang in SHELLS and not self.info.startswith("no-run")

    @property
    def where(self) -> str:
        return f"{self.path.name}:{self.line}"


def blocks(path: Path) -> list[Block]:
    """Every fenced block of ``path`` with its language and the rest of its info string."""
    text = path.read_text()
    return [Block(path, text[: m.start()].count("\n") + 1, m.group(1), m.group(2).strip(), m.group(3))
            for m in re.finditer(r"^```(\w*)([^\n]*)\n(.*?)^```", text, re.S | re.M)]


def commands(block: Block) -> list[list[str]]:
    """The ``comp`` command lines of a runnable block, as argument lists (after ``comp``);
    any other line is an error: the block should say ``no-run: <reason>``."""
    found = []
    for line in block.body.replace("\\\n", " ").splitlines():
        line = line.split(" #")[0].strip().removeprefix("$ ").strip()
        if not line or line.startswith("#"):
            continue
        if not line.startswith("comp "):
            raise ValueError(f"{block.where}: {line!r} is not a comp line; mark the block 'no-run: <reason>'")
        found.append(shlex.split(line)[1:])
    return found


# ---- tiny sizes ------------------------------------------------------------------------------------

TINY_MODEL = ["--d-model", "16", "--n-heads", "2", "--batch-size", "16"]
TINY_TRAIN_SETS = ["train.final_eval_n=8", "train.eval_every=0", "train.warmup_steps=2", "train.threads=1"]
TINY_STUDY_SETS = ["model.d_model=16", "model.n_heads=2", "train.batch_size=16", *TINY_TRAIN_SETS]
SEQUENCES = ("eval", "heads", "ablate", "patch", "circuit", "lengthgen", "dynamics", "crosstask", "probe")


def options(args: list[str]) -> dict[str, int]:
    return {a: i for i, a in enumerate(args) if a.startswith("--")}


def put(args: list[str], option: str, value: "str | None", add: bool = True) -> list[str]:
    """``args`` with ``option``'s value replaced by ``value`` (or appended when absent and ``add``)."""
    where = options(args)
    if option in where:
        args[where[option] + 1] = value
    elif add:
        args += [option, value]
    return args


def first(values: str, k: int) -> str:
    """The first ``k`` of a seed list (``0-31``, ``0,3,7``) or encoding list."""
    if re.fullmatch(r"\d+-\d+", values):
        lo, hi = map(int, values.split("-"))
        return ",".join(str(s) for s in range(lo, min(hi, lo + k - 1) + 1))
    return ",".join(values.split(",")[:k])


def tiny(args: list[str]) -> list[str]:
    """``comp ARGS`` with its sizes shrunk so that it runs in seconds on a CPU, its meaning kept."""
    args = list(args)
    command = args[0] if args else ""
    given = options(args)
    if command == "train":
        if "--seeds" in given:
            args = put(args, "--seeds", first(args[given["--seeds"] + 1], 2))
        if "--resume" in given:  # its settings are the run's: only the steps to reach change
            steps = int(args[given["--steps"] + 1]) if "--steps" in given else None
            return put(args, "--steps", str(max(2, steps // 100)), add=False) if steps else args
        steps = int(args[given["--steps"] + 1]) if "--steps" in given else 2000
        args = put(args, "--steps", str(max(2, steps // 100)))
        for option, value in zip(TINY_MODEL[::2], TINY_MODEL[1::2]):
            args = put(args, option, value)
        args = put(args, "--train-lengths", "1-4")
        if "--eval-lengths" in given:
            args = put(args, "--eval-lengths", "1-6")
        return args + [a for s in TINY_TRAIN_SETS for a in ("--set", s)]
    if command == "lengthgen":
        args = put(args, "--pe", first(args[given["--pe"] + 1], 2) if "--pe" in given else "rotary,nope")
        args = put(args, "--seeds", first(args[given["--seeds"] + 1], 1) if "--seeds" in given else "0")
        args = put(args, "--steps", "10")
        args = put(args, "--train-lengths", "1-4")
        val = "--val-lengths" in given
        if val:
            args = put(args, "--val-lengths", "5-6")
        test = next((o for o in ("--lengths", "--test-lengths") if o in given), "--lengths")
        args = put(args, test, "7-8" if val else "1-6")
        args = put(args, "--n", "8")
        return args + [a for s in TINY_STUDY_SETS for a in ("--set", s)]
    if args[:2] == ["circuit", "diff"]:
        return args
    if command in SEQUENCES:
        args = put(args, "--n", "8")
        for option in ("--n-train", "--n-test"):
            args = put(args, option, "16", add=False)
        if "--lengths" in given:
            args = put(args, "--lengths", "1-6")
        for option, value in (("--length", "4"), ("--at", "2")):
            args = put(args, option, value, add=False)
    if command == "probe":
        args = put(args, "--steps", "5")
    if command == "viz":
        args = put(args, "--length", "4", add=False)
    return args


def tiny_grid_file(src: Path, dst: Path) -> None:
    """A one-run copy of the grid file ``src``: the first value of each axis, a tiny train command."""
    spec = yaml.safe_load(src.read_text())
    spec["axes"] = {k: v[:1] for k, v in spec["axes"].items()}
    command = spec["command"] if isinstance(spec["command"], list) else shlex.split(spec["command"])
    spec["command"] = tiny(command)
    spec["wandb"] = False
    spec.pop("out", None)
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_text(yaml.safe_dump(spec))


def grid_files(args: list[str]) -> list[str]:
    """The grid files of the repository a comp line names (``comp grid FILE``)."""
    return [a for a in args[1:3] if a.endswith((".yaml", ".yml")) and (REPO / a).exists()]
