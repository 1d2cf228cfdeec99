#!/bin/bash
# The budget rule (fixed 2026-11-30 23:31 UTC, commit 'comp circuit --budget F', before any held-out or test number of a circuit it finds):
# the --ref-n 256 rule of ../run.sh plus --budget 0.25, the same for all six models. A circuit the search
# leaves within a quarter of the edges is not touched; a larger one loses its least harmful edges (on the
# discovery and validation batches) until it fits. Each circuit is then scored on a fresh test batch
# (data seed 12401, reference set 12402) that no search, rule or earlier score of this issue used:
# score.sh (the score line this script first had named no --ckpt, so comp circuit score could not find
# the run from the circuit's run name and wrote nothing; score.sh gives the run's path).
# usage: bash docs/results/circuits/refn/budget/run.sh MODEL...   (MODEL: default-s0 ... fixed-s2)
D=docs/results/circuits/refn/budget; K=logit=0.9,answer=0.97,cot=0.95
for m in "$@"; do
  OMP_NUM_THREADS=1 /usr/bin/time -v comp circuit --ckpt /work/runs/final/$m --level edges --method exact --n 32 --keep $K \
    --order nodes --swap --ref-n 256 --budget 0.25 --json $D/$m.json > $D/$m.log 2>&1
done
