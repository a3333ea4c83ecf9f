#!/usr/bin/env bash
# The CUDA kernels under numba's CUDA simulator (the README's test command runs this after
# `python -m pytest`). NUMBA_ENABLE_CUDASIM must be set before numba is imported, hence a
# process of its own. The lane needs the [cuda] extra, whose numba-cuda 0.30 caps NumPy below
# 2.5: it runs in the current environment when that has numba-cuda, otherwise in .venv-cuda,
# made here on first use. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
py=python
if ! python -c "import numba_cuda" 2>/dev/null; then
    if [ ! -x .venv-cuda/bin/python ]; then
        python -m venv .venv-cuda
        .venv-cuda/bin/python -m pip install -q --upgrade pip
    fi
    .venv-cuda/bin/python -m pip install -q -e ".[test,cuda,dask]"
    py=.venv-cuda/bin/python
fi
echo "== CUDA simulator: $($py -c 'import numpy, numba_cuda; print("numpy", numpy.__version__, "numba-cuda", numba_cuda.__version__)')"
NUMBA_ENABLE_CUDASIM=1 $py -m pytest --backend cuda "$@"
