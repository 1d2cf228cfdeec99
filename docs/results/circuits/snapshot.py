"""Copy the weights of a run that is still training (its latest ``training_state.safetensors``)
into a new run directory that the analysis commands can load; the source is only read.

    python docs/results/circuits/snapshot.py SOURCE_RUN_DIR NEW_RUN_DIR
"""

from __future__ import annotations

import sys
from pathlib import Path

from safetensors.torch import load_file

from comp.runs.load import load_run, load_run_config
from comp.runs.state import load_model_tensors, prepare_run_dir, save_weights


def main(src: Path, dst: Path) -> None:
    run = load_run(src, weights=False)
    state = load_file(str(src / "training_state.safetensors"))
    load_model_tensors(run.model, {k[len("model/"):]: v for k, v in state.items() if k.startswith("model/")}, str(src))
    cfg = load_run_config(src)
    prepare_run_dir(dst, cfg)
    save_weights(dst, run.model, cfg, step=0)
    print(f"{dst}: weights of {src} at optimizer step {int(state['optim/0/step'])}")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
