#!/bin/bash
# issue 12: the fixed recipe's ablations with log-spaced snapshots, 3 seeds each (one run per seed: packed rows)
. /work/venv/bin/activate; export PYTHONPATH=/work/main/src; cd /work/runs/dyn3
C="--pe t5+coupling --set model.t5_max_distance=16 --set train.target_acc=0 --save-every log --out /work/runs/dyn3 --quiet"
for s in 0 1 2; do comp train parity $C --seed $s --set model.attn_jitter=0.75 --name jitter-s$s > jitter-s$s.log 2>&1; done
for s in 0 1 2; do comp train parity $C --seed $s --set model.attn_scale=logn --name logn-s$s > logn-s$s.log 2>&1; done
for s in 0 1 2; do comp train parity $C --seed $s --name neither-s$s > neither-s$s.log 2>&1; done
for s in 0 1 2; do comp train parity $C --seed $s --set model.attn_scale=logn --set model.attn_jitter=0.75 --name fixed-s$s > fixed-s$s.log 2>&1; done
