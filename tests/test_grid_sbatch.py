"""The job script: golden files, quoting that survives bash, the option whitelist."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from comp.errors import CompError
from comp.grid.sbatch import SLURM_OPTIONS, array_spec, check_slurm_options, sbatch_script

GOLDEN = Path(__file__).parent / "golden"
NASTY = "it's a \"grid\" $(touch pwned) `id` ; rm -rf * & | > x"


def minimal() -> str:
    return sbatch_script(["/venv/bin/python", "-m", "comp.grid.task", "/runs/parity-pe"], job_name="parity-pe",
                         array="0-29%8", output="/runs/parity-pe/_grid/logs/slurm-%A_%a.out", chdir="/home/me/proj")


def full() -> str:
    return sbatch_script(
        ["/opt/my env/bin/python", "-m", "comp.grid.task", f"/runs/{NASTY}"],
        job_name=NASTY, array="0-2,5,7-8%2", output=f"/runs/{NASTY}/_grid/logs/slurm-%A_%a.out",
        chdir="/home/me/my project", partition="gpu", time="01:00:00", gpus=1, cpus=4, mem="8G", account="lab $x",
        qos="high", constraint="a100|h100", extra=["--exclusive", "--comment=hello world"],
        setup=["module load cuda", "source .venv/bin/activate"], signal="B:USR1@300",
    )


@pytest.mark.parametrize("name,make", [("minimal", minimal), ("full", full)])
def test_golden_scripts(name, make):
    """The exact text is pinned; regenerate with COMP_UPDATE_GOLDEN=1 after a deliberate change."""
    path = GOLDEN / f"{name}.sbatch"
    if os.environ.get("COMP_UPDATE_GOLDEN"):
        path.write_text(make())
    assert make() == path.read_text()


def test_script_sections_sorted_and_quoted():
    text = full()
    params = [x for x in text.splitlines() if x.startswith("#SBATCH")]
    options = [shlex.split(x)[1] for x in params]  # what sbatch reads: the quotes stripped
    assert options == sorted(options) and "#SBATCH --requeue" in params
    assert text.index("# Parameters") < text.index("# setup") < text.index("# command")
    assert "#SBATCH --signal=B:USR1@300" in params and "#SBATCH '--account=lab $x'" in params


def test_nasty_names_and_arguments_survive_bash(tmp_path):
    """Run the generated script with bash: every argument arrives intact, nothing is executed."""
    work = tmp_path / NASTY
    work.mkdir()
    out = work / "argv.json"
    args = ["a b", "$(touch pwned)", "it's", "`touch pwned2`", ";|&<>", "*", "$HOME", ""]
    command = [sys.executable, "-c", "import json, sys; json.dump(sys.argv[1:], open(sys.argv[1], 'w'))", str(out),
               *args]
    script = sbatch_script(command, job_name=NASTY, array="0-3", output=str(work / "o"), chdir=str(work),
                           setup=["echo setup ran >&2"])
    (work / "job.sbatch").write_text(script)
    proc = subprocess.run(["bash", str(work / "job.sbatch")], cwd=work, capture_output=True, text=True,
                          env={**os.environ, "SLURM_ARRAY_TASK_ID": "3", "SLURM_CPUS_PER_TASK": "2"})
    assert proc.returncode == 0, proc.stderr
    assert "setup ran" in proc.stderr
    assert json.loads(out.read_text()) == [str(out), *args, "3"]
    assert not any(p.name.startswith("pwned") for p in [*work.iterdir(), *tmp_path.iterdir()])


def test_whitelist_is_the_keyword_defaults_and_unknown_options_are_listed():
    assert SLURM_OPTIONS == ("partition", "time", "gpus", "cpus", "mem", "account", "qos", "constraint", "extra",
                             "setup", "signal", "requeue")
    with pytest.raises(CompError, match="unknown slurm option.*gpu_count.*valid options: partition, time, gpus"):
        check_slurm_options({"gpu_count": 1, "time": "1:00:00"})
    with pytest.raises(CompError, match="list of strings"):
        check_slurm_options({"extra": "--exclusive"})
    assert check_slurm_options({"cpus": 2}) == {"cpus": 2}


@pytest.mark.parametrize("line,match", [("exclusive", "--key=value"), ("--array=1-3", "comp sets --array"),
                                        ("--partition=gpu", "set 'partition'"), ("--cpus-per-task=2", "set 'cpus'")])
def test_extra_lines_may_not_fight_named_options(line, match):
    with pytest.raises(CompError, match=match):
        sbatch_script(["x"], job_name="j", array="0", output="o", chdir="/", extra=[line])


def test_array_spec():
    assert array_spec(range(30), 8) == "0-29%8"
    assert array_spec([7, 0, 1, 2, 5, 8]) == "0-2,5,7-8"
    assert array_spec([4], 2) == "4%2"
    with pytest.raises(CompError):
        array_spec([])
