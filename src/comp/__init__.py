"""comp: train tiny transformers on algorithmic tasks and find the circuits that solve them.

Subpackages: ``tasks`` (data), ``train`` (the loop and checkpoints), ``circuits``
(head scores, ablations, patching, hypotheses), ``probes`` (linear probes), ``cli``
(the ``comp`` command). Models are TransformerLens ``HookedTransformer`` s built by
:mod:`comp.model`; positional encodings live in :mod:`comp.encodings`.
"""

__version__ = "0.1.0"
