#!/usr/bin/env bash
# The test command, in two lanes. Extra arguments go to both pytest runs.
#  1. the core (reference, cpu, statistics, benchmarks) in the current environment, which
#     may hold the newest NumPy;
#  2. the CUDA kernels under numba's CUDA simulator. They need the [cuda] extra, whose
#     numba-cuda 0.30 caps NumPy below 2.5: run in the current environment when it has
#     numba-cuda, otherwise in .venv-cuda, made here on first use. A process of its own, since
#     NUMBA_ENABLE_CUDASIM must be set before numba is imported.
# DROPOUT_TESTS_CORE_ONLY=1 skips lane 2.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "== lane 1: core, $(python -c 'import numpy, numba; print("numpy", numpy.__version__, "numba", numba.__version__)')"
python -m pytest "$@"
[ "${DROPOUT_TESTS_CORE_ONLY:-0}" = 1 ] && exit 0
py=python
if ! python -c "import numba_cuda" 2>/dev/null; then
    if [ ! -x .venv-cuda/bin/python ]; then
        python -m venv .venv-cuda
        .venv-cuda/bin/python -m pip install -q --upgrade pip
    fi
    .venv-cuda/bin/python -m pip install -q -e ".[test,cuda,dask]"
    py=.venv-cuda/bin/python
fi
echo "== lane 2: CUDA simulator, $($py -c 'import numpy, numba_cuda; print("numpy", numpy.__version__, "numba-cuda", numba_cuda.__version__)')"
NUMBA_ENABLE_CUDASIM=1 $py -m pytest --backend cuda "$@"
