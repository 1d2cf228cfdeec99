#!/bin/bash
# The rule (fixed 2026-11-30 20:58 UTC, before any held-out number with --ref-n): session 8's --swap
# command plus --ref-n 256, the same for every model. Two queues side by side, one thread each.
# usage: bash docs/results/circuits/refn/run.sh MODEL...   (MODEL: default-s0 ... fixed-s2)
D=docs/results/circuits/refn; K=logit=0.9,answer=0.97,cot=0.95
for m in "$@"; do
  OMP_NUM_THREADS=1 /usr/bin/time -v comp circuit --ckpt /work/runs/final/$m --level edges --method exact --n 32 --keep $K \
    --order nodes --swap --ref-n 256 --json $D/$m-edges-nodes-swap-ref256.json > $D/$m.log 2>&1
done
