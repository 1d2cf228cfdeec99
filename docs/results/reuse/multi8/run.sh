#!/bin/bash
# issue 12, session 8: the 3-task model (parity, copy, polynomial with the task token), default size, with the
# per-task curriculum (each member widens its own lengths on its own accuracy), 20000-step cosine, one seed at a time
#   docs/results/reuse/multi8/run.sh "0 1 2"
. /work/venv/bin/activate; export PYTHONPATH=/work/wt/multi8/src; cd /work/runs/multi8
O="--out /work/runs/multi8 --quiet --save-every log --set train.threads=1"
for s in ${1:-0 1 2}; do
  nice -n 5 comp train multi --tasks parity,copy,polynomial --seed $s --steps 20000 --curriculum-per-task --name multi-s$s $O \
    > multi-s$s.log 2>&1
done
