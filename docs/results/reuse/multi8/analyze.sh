#!/bin/bash
# issue 12, session 8: per-task circuits, head scores, shared/specific table and cross-task patching of one
# 3-task run at the training lengths:  docs/results/reuse/multi8/analyze.sh SEED [LENGTHS [TASKS]]
# (defaults 1-16, "parity copy polynomial"); run RUN (default session 8's multi-s<SEED>), writes OUT
# (default docs/results/reuse/multi8/s<SEED>/), code at COMP_SRC (default session 8's branch)
set -e
s=$1; lengths=${2:-1-16}; tasks=${3:-parity copy polynomial}; R=${RUN:-/work/runs/multi8/multi-s$s}
d=${OUT:-$(cd "$(dirname "$0")" && pwd)/s$s}; L=${lengths#*-}
. /work/venv/bin/activate; export PYTHONPATH=${COMP_SRC:-/work/wt/multi8/src}
mkdir -p $d; cd $d
for t in $tasks; do
  nice -n 5 comp circuit --ckpt $R --member $t --lengths $lengths --level nodes --method exact --n 32 --json circuit-$t.json > circuit-$t.txt
  nice -n 5 comp heads --ckpt $R --member $t --lengths $lengths --n 64 --json heads-$t.json > heads-$t.txt
done
comp circuit shared $(for t in $tasks; do echo circuit-$t.json; done) --json shared.json > shared.txt
nice -n 5 comp crosstask --ckpt $R --length $L --n 128 --json crosstask.json > crosstask.txt
# a member not in TASKS (not solved at LENGTHS): its head scores there too, to compare its iteration heads
for t in parity copy polynomial; do
  case " $tasks " in *" $t "*) ;; *) nice -n 5 comp heads --ckpt $R --member $t --lengths $lengths --n 64 --json heads-$t.json > heads-$t.txt;; esac
done
