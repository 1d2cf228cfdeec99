#!/bin/bash
# issue 12, session 9: session 8's analysis (per-task circuits, head scores, shared/specific table, cross-task
# patching at the training lengths) on the 30000-step --mix need runs:
#   docs/results/reuse/multi9/analyze.sh SEED [LENGTHS [TASKS]]   -> docs/results/reuse/multi9/s<SEED>/
# RUN and OUT override the run (default /work/runs/s9/multi9/multi9l-s<SEED>) and the output directory.
here=$(cd "$(dirname "$0")" && pwd)
RUN=${RUN:-/work/runs/s9/multi9/multi9l-s$1} OUT=${OUT:-$here/s$1} COMP_SRC=$(cd "$here/../../../../src" && pwd) \
  exec bash "$here/../multi8/analyze.sh" "$@"
