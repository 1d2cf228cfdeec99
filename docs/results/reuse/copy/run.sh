#!/bin/bash
# issue 12 section 4: transfer from copy at the settings of the polynomial-parent experiment (reuse/poly/run.sh)
. /work/venv/bin/activate; cd /work/runs/s8/tr
O="--out /work/runs/s8/tr --quiet --save-every log --set train.threads=1"
nice -n 5 comp train copy --seed 0 --steps 20000 --set train.curriculum=true --name copy-s0 $O > copy-s0.log 2>&1
for s in 0 1 2; do nice -n 5 comp train parity --seed $s --init-from /work/runs/s8/tr/copy-s0 --name ftcopy-s$s $O > ftcopy-s$s.log 2>&1; done
for s in 0 1 2; do nice -n 5 comp train parity --seed $s --name scratch-s$s $O > scratch-s$s.log 2>&1; done
echo done > done.txt
