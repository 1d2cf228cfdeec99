"""Training: the loop (:mod:`comp.train.loop`), multi-seed training (:mod:`comp.train.multiseed`),
the schedule and reports. Run directories (saving, loading, resuming) are :mod:`comp.runs`'s."""

from comp.train.loop import TrainResult, train

__all__ = ["TrainResult", "train"]
