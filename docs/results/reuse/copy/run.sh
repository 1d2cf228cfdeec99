#!/bin/bash
# issue 12 section 4: transfer from copy at the settings of the polynomial-parent experiment (reuse/poly/run.sh):
# a copy parent until it solves (curriculum, 20000-step cosine, early stop), then parity fine-tuned from it;
# the from-scratch parity runs are tr5's scratch-s0..2 (the same command without --init-from)
. /work/venv/bin/activate; export PYTHONPATH=/work/wt/multi/src; cd /work/runs/multi6/tr
O="--out /work/runs/multi6/tr --quiet --save-every log --set train.threads=1"
nice -n 5 comp train copy --seed 0 --steps 20000 --curriculum --name copy-s0 $O > copy-s0.log 2>&1
for s in 0 1 2; do nice -n 5 comp train parity --seed $s --init-from /work/runs/multi6/tr/copy-s0 --name ftcopy-s$s $O > ftcopy-s$s.log 2>&1; done
