"""Grids of runs: a YAML file's axes expanded into a manifest, run as a Slurm array or
by local worker processes, resumable after preemption, with status and collected results.

Modules: :mod:`~comp.grid.spec` (grid files, expansion into a manifest),
:mod:`~comp.grid.bases` (how each base command is driven), :mod:`~comp.grid.sbatch`
(the job script, one pure function), :mod:`~comp.grid.layout` (the grid directory and
its records), :mod:`~comp.grid.status` (the state of each run), :mod:`~comp.grid.task`
(what one array task runs), :mod:`~comp.grid.backends` (submit to Slurm, or run
locally), :mod:`~comp.grid.launch` (what ``comp grid`` does) and
:mod:`~comp.grid.collect` (the results table). The task runner imports no torch, so a
task starts fast; only its child (the comp command) does.
"""
