#!/bin/bash
# issue 12 section 2: per-task circuits, head scores, shared/specific table and cross-task patching
# of one 3-task run:  docs/results/reuse/multi/analyze.sh SEED [LONG [PARTS]]   (PARTS: short, long or both)
# writes docs/results/reuse/multi/s<SEED>/short (lengths 1-4, all three tasks: polynomial solved at 1-3)
# and .../s<SEED>/long (lengths 1-LONG, parity and copy: where they are solved; the curriculum, held back by
# polynomial, never reached the lengths above: 1-12 for seed 0 (s0/long12), 1-8 for seeds 0 and 1 (long))
set -e
s=$1; L=${2:-8}; P=${3:-short long}; R=/work/runs/multi6/multi-s$s; H=$(cd "$(dirname "$0")" && pwd)/s$s
. /work/venv/bin/activate; export PYTHONPATH=/work/wt/multi/src
part() {  # DIR LENGTHS CROSSTASK_LENGTH TASKS...
  local d=$H/$1 lengths=$2 length=$3; shift 3; mkdir -p $d; cd $d
  for t in "$@"; do
    nice -n 5 comp circuit --ckpt $R --member $t --lengths $lengths --level nodes --method exact --n 32 --json circuit-$t.json > circuit-$t.txt
    nice -n 5 comp heads --ckpt $R --member $t --lengths $lengths --n 64 --json heads-$t.json > heads-$t.txt
  done
  comp circuit shared $(for t in "$@"; do echo circuit-$t.json; done) --json shared.json > shared.txt
  nice -n 5 comp crosstask --ckpt $R --length $length --n 128 --json crosstask.json > crosstask.txt
}
case "$P" in *short*) part short 1-4 4 parity copy polynomial;; esac
case "$P" in *long*) ;; *) exit 0;; esac
part long 1-$L $L parity copy
# polynomial's head scores at 1-LONG too (it is not solved there: no circuit), to compare its iteration heads with parity's
nice -n 5 comp heads --ckpt $R --member polynomial --lengths 1-$L --n 64 --json $H/long/heads-polynomial.json > $H/long/heads-polynomial.txt
