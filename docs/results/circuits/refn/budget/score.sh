#!/bin/bash
# Each circuit of run.sh on the fresh test batch (data seed 12401, reference set 12402, 32 sequences and
# 256 reference sequences per length), with the run given by path (the circuit names only "default-s1").
# usage: bash docs/results/circuits/refn/budget/score.sh MODEL...
D=docs/results/circuits/refn/budget
for m in "$@"; do
  OMP_NUM_THREADS=1 comp circuit score $D/$m.json --ckpt /work/runs/final/$m --n 32 --ref-n 256 --seed 12401 \
    --json $D/$m-test12401.json > $D/$m-test12401.log 2>&1
done
