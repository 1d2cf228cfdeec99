"""Training: the loop (:mod:`comp.train.loop`), its schedule, resumable state and reports."""

from comp.train.loop import TrainResult, load_run_config, resume_config, train

__all__ = ["TrainResult", "load_run_config", "resume_config", "train"]
