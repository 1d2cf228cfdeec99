#!/bin/bash
# Targets chosen on a selection batch (rule fixed 2026-11-30 22:27 UTC, before any of its runs):
# for each model, discovery under three --keep specs, from strict to loose (S1 is refn/run.sh's),
# every circuit scored on the selection batch (data seed 12351 = 12345 + 6, its own 256 reference
# rows; neither the discovery 12345, the held-out 12347 nor the validation batch 12349), then
# choose.py keeps the smallest circuit whose selection-batch ratios are answer >= 0.96 and
# whole CoT >= 0.92 (session 9's --select shares); ties go to the stricter spec; none: S1's.
# usage: bash docs/results/circuits/refn/grid/run.sh MODEL...   (one queue; run two side by side)
D=docs/results/circuits/refn/grid
declare -A SPEC=([s2]=logit=0.85,answer=0.97,cot=0.93 [s3]=logit=0.8,answer=0.97,cot=0.91)
for m in "$@"; do
  cp docs/results/circuits/refn/$m-edges-nodes-swap-ref256.json $D/$m-s1.json  # S1 = logit=0.9,answer=0.97,cot=0.95
  for k in s2 s3; do
    OMP_NUM_THREADS=1 comp circuit --ckpt /work/runs/final/$m --level edges --method exact --n 32 --keep ${SPEC[$k]} \
      --order nodes --swap --ref-n 256 --json $D/$m-$k.json > /dev/null 2>&1
  done
  for k in s1 s2 s3; do
    OMP_NUM_THREADS=1 comp circuit score $D/$m-$k.json --ckpt /work/runs/final/$m --n 32 --seed 12351 \
      --json $D/$m-$k-selection.json > /dev/null 2>&1
  done
done
