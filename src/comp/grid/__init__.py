"""Grids of runs: a YAML file's axes expanded into a manifest, run as a Slurm array or
by local worker processes, resumable after preemption, with status and collected results.

Modules: :mod:`~comp.grid.spec` (grid files, expansion into a manifest),
:mod:`~comp.grid.bases` (how each base command is driven), :mod:`~comp.grid.sbatch`
(the job script, one pure function), :mod:`~comp.grid.layout` (the grid directory and
run states), :mod:`~comp.grid.task` (what one array task runs), :mod:`~comp.grid.backends`
(submit to Slurm, or run locally) and :mod:`~comp.grid.collect` (results table).
This package imports neither torch nor the CLI, so the task runner starts fast.
"""
