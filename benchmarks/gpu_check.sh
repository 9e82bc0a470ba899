#!/usr/bin/env bash
# The tracing engine on a GPU machine, within 8 minutes: per-pass time of the paper workload's shape in fp32, TF32
# and bf16, edge agreement of TF32/bf16 with strict fp32, and the projected time of the whole paper workload.
#   bash benchmarks/gpu_check.sh                 # PYTHON=... to choose the interpreter (needs torch + transformers)
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-$(command -v .venv/bin/python || command -v python3)}"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
timeout 480 "$PYTHON" benchmarks/gpu_check.py --device "${DEVICE:-cuda}" "$@"
