"""comp: train tiny transformers on algorithmic tasks and find the circuits that solve them.

Subpackages: ``tasks`` (data), ``model`` (config, build, positional encodings, attention
scale), ``train`` (the loop, multi-seed training, ``comp train`` requests), ``runs`` (run
directories: names, files, saving, loading), ``circuits`` (head scores, ablations,
patching, hypotheses), ``probes`` (linear probes), ``lengthgen`` (the length study),
``grid`` (grids of runs on Slurm or locally), ``views`` (tables, charts, attention pages)
and ``cli`` (the ``comp`` command, thin wrappers over all of these). Models are
TransformerLens ``HookedTransformer`` s. docs/architecture.md draws the whole picture.
"""

__version__ = "0.1.0"
