#!/bin/bash
# issue 12, session 9: when each member task's iteration head forms in the 3-task --mix need runs:
#   docs/results/reuse/multi9/dynamics.sh SEED   -> docs/results/reuse/multi9/dynamics/s<SEED>-<task>.json
# comp dynamics --member on a thinned copy of the run (config + the snapshots at the powers of two and every 500
# steps, hard links; all 141 snapshots x 3 members took too long for the session), parity (copy reads x_t with
# parity's head, reuse.md) and polynomial, head scores and accuracy at the training lengths 1-16, 32 sequences each
set -e
s=$1; R=${RUN:-/work/runs/s9/multi9/multi9l-s$s}; T=/work/runs/s9/dynsub/multi9l-s$s
d=$(cd "$(dirname "$0")" && pwd)/dynamics
. /work/venv/bin/activate
rm -rf $T; mkdir -p $T/snapshots; cp $R/config.json $T/
for f in $R/snapshots/step_*.safetensors; do
  k=$((10#$(basename $f .safetensors | sed 's/step_//')))
  if (( k % 500 == 0 )) || (( (k & (k - 1)) == 0 )); then ln $f $T/snapshots/; fi
done
for t in parity polynomial; do
  comp dynamics --ckpt $T --member $t --measures acc,heads --lengths 1-16 --n 32 --json $d/s$s-$t.json > $d/s$s-$t.txt
done
