#!/usr/bin/env bash
# The test command: every backend that can run here. Extra arguments go to both pytest runs.
set -euo pipefail
cd "$(dirname "$0")/.."
# 1. reference and cpu (and cuda too where a real GPU is present)
python -m pytest "$@"
# 2. the CUDA kernels under the CUDA simulator: a process of its own, since the variable
#    must be set before numba is imported
NUMBA_ENABLE_CUDASIM=1 python -m pytest --backend cuda "$@"
