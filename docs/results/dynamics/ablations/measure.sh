#!/bin/bash
# issue 12: dynamics of the fixed recipe and its ablations (3 seeds each), then the training-length margins of the final weights
. /work/venv/bin/activate; export PYTHONPATH=/work/main/src OMP_NUM_THREADS=1; cd /work/runs/dyn3; mkdir -p out
dyn() { for r in "$@"; do comp dynamics --ckpt /work/runs/dyn3/$r --measures acc,heads --lengths 8,16,32,64 --n 32 --json out/$r.json > out/$r.log 2>&1; done; }
dyn fixed-s0 jitter-s0 logn-s0 neither-s0 fixed-s2 jitter-s2 &
dyn fixed-s1 jitter-s1 logn-s1 neither-s1 logn-s2 neither-s2 &
python /work/main/docs/results/dynamics/margin.py out/margins-ablations.json /work/runs/dyn3/{fixed,jitter,logn,neither}-s{0,1,2} > out/margins.log 2>&1
wait
