#!/bin/bash
# issue 12: the paper's transfer experiment: polynomial parent until it solves, then parity fine-tuned from it vs from scratch
. /work/venv/bin/activate; export PYTHONPATH=/work/main/src; cd /work/runs/tr5
O="--out /work/runs/tr5 --quiet --save-every log"
comp train polynomial --seed 0 --steps 20000 --set train.curriculum=true --name poly-s0 $O > poly-s0.log 2>&1
for s in 0 1 2; do comp train parity --seed $s --init-from /work/runs/tr5/poly-s0 --name ftpoly-s$s $O > ftpoly-s$s.log 2>&1; done
for s in 0 1 2; do comp train parity --seed $s --name scratch-s$s $O > scratch-s$s.log 2>&1; done
