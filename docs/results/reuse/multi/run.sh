#!/bin/bash
# issue 12 section 2: 3-task model (parity, copy, polynomial with the task token), default size,
# the settings that made polynomial solve in tr5 (curriculum, 20000-step cosine), 3 seeds one at a time
. /work/venv/bin/activate; export PYTHONPATH=/work/wt/multi/src; cd /work/runs/multi6
O="--out /work/runs/multi6 --quiet --save-every log --set train.threads=1"
for s in 0 1 2; do
  nice -n 5 comp train multi --tasks parity,copy,polynomial --seed $s --steps 20000 --curriculum --name multi-s$s $O > multi-s$s.log 2>&1
done
