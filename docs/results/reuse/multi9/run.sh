#!/bin/bash
# issue 12, session 9: the 3-task model with the per-task curriculum and the need-weighted mixture (--mix need)
#   run.sh SEED [STEPS [NAME]]   (15000 steps: multi9-s<SEED>; 30000: multi9l-s<SEED>; seeds side by side, one process each)
. /work/venv/bin/activate; cd /work/runs/s9/multi9
s=$1; steps=${2:-15000}; name=${3:-multi9-s$s}
comp train multi --tasks parity,copy,polynomial --seed $s --steps $steps --mix need --name $name \
  --out /work/runs/s9/multi9 --quiet --save-every log --set train.threads=1 > $name.log 2>&1
