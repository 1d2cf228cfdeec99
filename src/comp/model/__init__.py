"""The model: its config, how it is built, its positional encodings and attention temperature.

- :mod:`comp.model.config`: :class:`ModelConfig`, the architecture (saved in ``config.json``);
- :mod:`comp.model.build`: :class:`CompTransformer` (a TransformerLens ``HookedTransformer``)
  and :func:`build_model`;
- :mod:`comp.model.encodings`: the registry of positional encodings (one entry each);
- :mod:`comp.model.attention_scale`: scalable softmax (``logn``) and temperature jitter.
- :mod:`comp.model.fused`: the fused training path (SDPA attention, ``F.layer_norm``) where no hook looks.
"""

from comp.model.build import (
    CompTransformer,
    build_model,
    max_length,
    n_params,
    pinned_positions,
    resolve_device,
    with_context,
)
from comp.model.config import ModelConfig

__all__ = ["CompTransformer", "ModelConfig", "build_model", "max_length", "n_params", "pinned_positions",
           "resolve_device", "with_context"]
