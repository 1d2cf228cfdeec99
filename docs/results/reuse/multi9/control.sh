#!/bin/bash
# issue 12, session 9, control: the same 30000-step recipe with the even mixture (--curriculum-per-task, no --mix need)
#   control.sh SEED   -> multi9e-s<SEED>
. /work/venv/bin/activate; cd /work/runs/s9/multi9
s=$1; name=multi9e-s$s
nice -n 5 comp train multi --tasks parity,copy,polynomial --seed $s --steps 30000 --curriculum-per-task --name $name \
  --out /work/runs/s9/multi9 --quiet --save-every log --set train.threads=1 > $name.log 2>&1
