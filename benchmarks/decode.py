"""Greedy decoding at a long length: TransformerLens's key-value cache against the uncached loop.

Both decode the whole answer region of the same rows of parity at length ``L`` (``2L + 2``
tokens) with the study's model (t5+coupling, logn, 2 layers x 4 heads, width 64,
untrained: every row is decoded in full, the worst case): :func:`comp.decoding.greedy_decode`
(one prefill, then one token per step against the cache) and
:func:`comp.decoding.greedy_decode_uncached` (one full forward over the prefix per token).
They must give the same tokens; the ratio is the speed-up of the cache.
"""

from __future__ import annotations

import torch

from benchmarks.common import Options, Row, Timer
from comp.decoding import greedy_decode, greedy_decode_uncached
from comp.evaluation import eval_batch
from comp.model import ModelConfig, build_model
from comp.tasks import make_task


def bench(opts: Options) -> list[Row]:
    length, n = (4, 2) if opts.quick else (256, 16)
    cfg = ModelConfig(encoding="t5+coupling", t5_max_distance=16, attn_scale="logn", n_ctx=2 * length + 2)
    model = build_model(cfg, seed=0, device=opts.torch_device).eval()
    batch = eval_batch(make_task("parity"), length, n, seed=0, device=opts.torch_device)
    with Timer(opts.torch_device) as cached:
        fast = greedy_decode(model, batch)
    with Timer(opts.torch_device) as uncached:
        slow = greedy_decode_uncached(model, batch)
    same = torch.equal(fast, slow)
    return [
        Row(
            "decode",
            f"seconds, greedy decoding of {n} parity rows at L={length} ({2 * length + 2} tokens): cached / uncached",
            comp=cached.seconds,
            baseline=uncached.seconds,
            ratio=uncached.seconds / cached.seconds,
            goal="same tokens",
            met=same,
            note=f"ratio = speed-up of the key-value cache; tokens {'equal' if same else 'DIFFER'}",
        )
    ]
