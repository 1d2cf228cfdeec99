"""A study's settings, its runs, and their evaluation by length.

A :class:`Study` is a grid of (encoding, seed) runs of one task and one training range.
:func:`plan` checks the whole grid before anything is written; :func:`evaluate_job`
evaluates one finished run at the test lengths, cached per run in
``lengthgen_eval.json`` so a rerun evaluates only what is new.

Free generation needs no decoding here: greedy decoding reproduces the teacher-forced
predictions up to their first error and then repeats that error, so a sequence is
generated exactly right if and only if every teacher-forced prediction is right, and
``acc_generate`` equals ``acc_cot``. The study takes it from teacher forcing (one forward
per batch, affordable on a CPU at long lengths); ``decode=True`` decodes for real.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from comp.catalog import N_SEQUENCES
from comp.config import EVAL_SEED, RunConfig, build_config
from comp.errors import CompError
from comp.evaluation import evaluate_run
from comp.io import read_json, write_json
from comp.lengthgen.calibrate import check_calibration
from comp.lengthgen.select import check_rule
from comp.model import max_length, resolve_device
from comp.model.encodings import COMPARED, canonical_encoding
from comp.runs.files import RunStatus, read_eval, run_status
from comp.runs.load import load_run_config
from comp.runs.names import default_run_name
from comp.tasks import parse_lengths

DEFAULT_PES = ",".join(COMPARED)  # the encodings the registry marks as compared by default
EVAL_CACHE = "lengthgen_eval.json"
BOOKKEEPING = ("device", "threads", "wandb", "wandb_project", "wandb_group")  # may differ between reruns
METRICS = ("acc_generate", "acc_cot", "acc_answer")


@dataclass
class Study:
    """One length-generalization study. Saved in results.json."""

    task: str = "parity"  # task to learn (parity, parity_nocot, copy, polynomial, ...)
    pes: list[str] = field(default_factory=lambda: DEFAULT_PES.split(","))  # encodings to compare
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])  # one run per encoding and seed
    train_lengths: str = "1-16"  # training range of every run
    test_lengths: str = "1-128"  # evaluation lengths
    steps: int | None = None  # training steps (None: comp train's default)
    sets: list[str] = field(default_factory=list)  # --set overrides applied to every run
    n: int = N_SEQUENCES  # evaluation sequences per length
    eval_seed: int = EVAL_SEED  # seed of the evaluation sets
    decode: bool = False  # greedy-decode for acc_generate instead of the teacher-forced identity
    val_lengths: str = ""  # validation lengths: choose one encoding on them first, test only it ("": test all)
    select: str = "max-min-acc"  # the rule that chooses on val_lengths (comp.lengthgen.select.RULES)
    device: str = "auto"  # where runs train and are evaluated: auto (cuda when present) | cpu | cuda | cuda:N
    calibrate: str = ""  # per-run inference-time factor chosen on val_lengths (comp.lengthgen.calibrate; "": none)
    extend: int = 0  # steps more for a run with a validation row below 1.0 (comp.lengthgen.extend; 0: none)
    restarts: int = 0  # new initializations for a run still below 1.0 on validation after extend (0: none)


@dataclass
class RunJob:
    """One run of the grid."""

    pe: str
    seed: int
    run_dir: Path
    config: RunConfig

    @property
    def name(self) -> str:
        return self.run_dir.name

    @property
    def status(self) -> RunStatus:
        """finished | interrupted (resumable) | stale (started, never checkpointed) | new: :func:`comp.runs.files.run_status`"""
        return run_status(self.run_dir)


def _comparable(cfg: RunConfig) -> dict:
    data = cfg.to_dict()
    for key in BOOKKEEPING:
        data["train"].pop(key, None)
    return data


def _differences(a: dict, b: dict, prefix: str = "") -> list[str]:
    out = []
    for key in sorted(set(a) | set(b)):
        x, y = a.get(key), b.get(key)
        if isinstance(x, dict) and isinstance(y, dict):
            out += _differences(x, y, f"{prefix}{key}.")
        elif x != y:
            out.append(f"{prefix}{key} {x!r} there, {y!r} asked")
    return out


def check_restarts(restarts: int, val_lengths: str) -> None:
    """Refuse restarts with nothing to decide on or a negative count (comp.lengthgen.extend, step 4)."""
    if restarts < 0:
        raise CompError(f"--restarts takes a count of 0 or more, got {restarts}")
    if restarts and not val_lengths:
        raise CompError("--restarts decides on validation lengths; give them too (e.g. --val-lengths 24-63)")


def check_extend(steps: int, val_lengths: str) -> None:
    """Refuse an extension with nothing to decide on or a step count that is not positive."""
    if not steps:
        return
    if steps < 0:
        raise CompError(f"--extend takes a positive number of steps, got {steps}")
    if not val_lengths:
        raise CompError("--extend decides on validation lengths; give them too (e.g. --val-lengths 24-63)")


def plan(study: Study, out: Path) -> list[RunJob]:
    """Every run of the study, checked: valid settings, test lengths that fit, no clash with
    an existing run made with other settings. Writes nothing."""
    pes = [canonical_encoding(p) for p in study.pes if p.strip()]
    if not pes:
        raise CompError("no encodings given; pass --pe rotary,alibi,...")
    if len(set(pes)) < len(pes):
        dup = sorted({p for p in pes if pes.count(p) > 1})
        raise CompError(f"--pe names {', '.join(dup)} more than once (after resolving aliases); name each once")
    if not study.seeds or len(set(study.seeds)) < len(study.seeds):
        raise CompError(f"--seeds must be distinct and non-empty, got {study.seeds}")
    if study.task == "multi":
        raise CompError("a length study compares one task; run one study per task (--task parity, --task copy, ...)")
    if study.n < 1:
        raise CompError(f"--n must be at least 1, got {study.n}")
    resolve_device(study.device)  # a device that is not there fails before anything is written
    check_rule(study.select)
    if study.calibrate and not study.val_lengths:
        check_calibration(study.calibrate, study.val_lengths, "logn")  # the missing validation lengths
    check_extend(study.extend, study.val_lengths)
    check_restarts(study.restarts, study.val_lengths)
    if study.val_lengths and set(parse_lengths(study.val_lengths)) & set(parse_lengths(study.test_lengths)):
        raise CompError(f"--val-lengths {study.val_lengths} and --test-lengths {study.test_lengths} overlap; "
                        "choose on lengths that are not tested (e.g. --val-lengths 24-48 --test-lengths 64,128)")
    longest = max(parse_lengths(study.test_lengths))
    group = Path(os.path.abspath(out)).name  # wandb group (when --set train.wandb=true): the study's name
    jobs = []
    for pe in pes:
        for seed in study.seeds:
            cfg = build_config(study.task, None, study.sets, encoding=pe, seed=seed, steps=study.steps,
                               train_lengths=study.train_lengths, wandb_group=group,
                               device=None if study.device == "auto" else study.device)
            task = cfg.validate()
            check_calibration(study.calibrate, study.val_lengths, cfg.model.attn_scale)
            seq = max(m.seq_len(longest) for m in task.components())
            try:
                max_length(cfg.model, seq)
            except CompError as e:
                raise CompError(f"{pe} cannot be evaluated at length {longest}: {e}") from None
            run_dir = out / "runs" / default_run_name(study.task, pe, seed)
            job = RunJob(pe, seed, run_dir, cfg)
            if job.status != "new":
                diff = _differences(_comparable(load_run_config(run_dir)), _comparable(cfg))
                if diff:
                    raise CompError(f"run {run_dir} exists with other settings ({'; '.join(diff[:3])}); "
                                    "use another --out, or the settings it was made with")
            jobs.append(job)
    return jobs


def evaluate_job(job: RunJob, study: Study, lengths: "str | None" = None, sharpen: float = 1.0) -> list[dict]:
    """Rows ``{"pe", "seed", "length", "acc_generate", "acc_cot", "acc_answer"}`` of one finished run
    at ``lengths`` (default: the test lengths), evaluating only lengths its cache lacks. ``sharpen``:
    the calibrated factor on the run's log(n) scales (rows then carry ``"sharpen"``; own cache file)."""
    trained = read_eval(job.run_dir)
    key = {"n": study.n, "seed": study.eval_seed, "decode": study.decode, "step": trained.get("step")}
    path = job.run_dir / (EVAL_CACHE if sharpen == 1.0 else EVAL_CACHE.replace(".json", f"_x{sharpen:g}.json"))
    cache = read_json(path, "evaluation cache") if path.exists() else {}
    rows: dict = cache.get("rows", {}) if cache.get("key") == key else {}
    lengths = parse_lengths(lengths or study.test_lengths)
    missing = [n for n in lengths if str(n) not in rows]
    if missing:
        result = evaluate_run(str(job.run_dir), ",".join(map(str, missing)), n=study.n, seed=study.eval_seed,
                              generate=study.decode, device=study.device, sharpen=sharpen)
        for r in result["rows"]:
            rows[str(r["length"])] = {m: r["acc_cot"] if (m == "acc_generate" and not study.decode) else r[m]
                                      for m in METRICS}
        write_json(path, {"key": key, "rows": rows})
    extra = {"sharpen": sharpen} if sharpen != 1.0 else {}
    return [{"pe": job.pe, "seed": job.seed, "length": n, **rows[str(n)], **extra} for n in lengths]
