#!/bin/bash
# Is the circuit found at lengths 1-16 the circuit at 64 and 128 (final weights)? The budget rule of ../run.sh,
# run again at one length (64 or 128), then compared with the 1-16 circuit (comp circuit diff).
# usage: bash docs/results/circuits/refn/budget/long/run.sh LENGTH MODEL...   (MODEL: fixed-s0 ... fixed-s2)
B=docs/results/circuits/refn/budget; D=$B/long; K=logit=0.9,answer=0.97,cot=0.95; L=$1; shift
for m in "$@"; do
  OMP_NUM_THREADS=1 comp circuit --ckpt /work/runs/final/$m --lengths $L --level edges --method exact --n 32 --keep $K \
    --order nodes --swap --ref-n 256 --budget 0.25 --json $D/$m-L$L.json > $D/$m-L$L.log 2>&1
  comp circuit diff $B/$m.json $D/$m-L$L.json --json $D/$m-diff-1-16-vs-$L.json > $D/$m-diff-1-16-vs-$L.log 2>&1
done
