#!/usr/bin/env bash
# The GPU check (see benchmarks/gpu_check.py): run from anywhere on a CUDA machine that has
# this repository and comp's Python packages. Writes gpu_check.json and gpu_check.log into
# $OUT (default ./gpu-check). Finishes within --budget seconds (default 330).
#   bash benchmarks/gpu_check.sh [--budget 330] [--device cuda]
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD/src:$PWD${PYTHONPATH:+:$PYTHONPATH}"
exec "${PYTHON:-python}" -m benchmarks.gpu_check "$@"
