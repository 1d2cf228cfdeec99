"""Teacher-forced evaluation at a long length: the fused (SDPA) evaluation path against the hook path.

Both evaluate the same rows of parity at length ``L`` (``2L + 2`` tokens) with the length
study's model (t5+coupling, logn, 2 layers x 4 heads, width 64) through
:func:`comp.evaluation.evaluate_length` (``generate=False``, what ``comp lengthgen`` does):
once as comp runs it (SDPA where no hook looks, one position-bias row for the batch, batches
bounded by activations) and once with the fused path switched off (TransformerLens's
attention, patterns materialised, batches bounded by the pattern budget). The accuracy
must be the same and the loss equal to float rounding; the ratio is the speed-up.
"""

from __future__ import annotations

import contextlib
import math

from benchmarks.common import Options, Row, Timer
from comp.evaluation import evaluate_length
from comp.model import ModelConfig, build_model
from comp.tasks import make_task


@contextlib.contextmanager
def hook_path():
    """``comp.evaluation`` with the fused context switched off (the path evaluation took before)."""
    import comp.evaluation as evaluation

    real = evaluation.fused_training
    evaluation.fused_training = lambda model, enabled=True, inference=False: real(model, False)
    try:
        yield
    finally:
        evaluation.fused_training = real


def bench(opts: Options) -> list[Row]:
    length, n = (8, 4) if opts.quick else (1024, 16)
    cfg = ModelConfig(encoding="t5+coupling", t5_max_distance=16, attn_scale="logn", n_ctx=2 * length + 2)
    model = build_model(cfg, seed=0, device=opts.torch_device).eval()
    task = make_task("parity")
    with Timer(opts.torch_device) as fused:
        fast = evaluate_length(model, task, length, n, generate=False)
    with hook_path(), Timer(opts.torch_device) as hooked:
        slow = evaluate_length(model, task, length, n, generate=False)
    same = fast.acc_cot == slow.acc_cot and math.isclose(fast.loss, slow.loss, rel_tol=1e-4, abs_tol=1e-6)
    return [
        Row(
            "evaluate",
            f"seconds, teacher-forced evaluation of {n} parity rows at L={length} ({2 * length + 2} tokens): "
            "fused / hook path",
            comp=fused.seconds,
            baseline=hooked.seconds,
            ratio=hooked.seconds / fused.seconds,
            goal="same accuracy and loss",
            met=same,
            note=f"ratio = speed-up of the fused evaluation path; accuracy {fast.acc_cot:.4f} vs {slow.acc_cot:.4f}, "
                 f"loss {fast.loss:.6g} vs {slow.loss:.6g}",
        )
    ]
