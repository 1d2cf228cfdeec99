#!/bin/bash
# polynomial's circuit and head scores on its own trained lengths 1-8 (it reached 8, not 16):
#   docs/results/reuse/multi8/poly8.sh SEED   -> docs/results/reuse/multi8/s<SEED>/poly8/
set -e
s=$1; R=/work/runs/multi8/multi-s$s; d=$(cd "$(dirname "$0")" && pwd)/s$s/poly8
. /work/venv/bin/activate; export PYTHONPATH=/work/wt/multi8/src
mkdir -p $d; cd $d
nice -n 5 comp circuit --ckpt $R --member polynomial --lengths 1-8 --level nodes --method exact --n 32 --json circuit-polynomial.json > circuit-polynomial.txt
for t in parity polynomial; do nice -n 5 comp heads --ckpt $R --member $t --lengths 1-8 --n 64 --json heads-$t.json > heads-$t.txt; done
