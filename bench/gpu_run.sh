#!/usr/bin/env bash
# Everything the GPU evidence needs, in one call on the device machine (see ../shared/GPU.md):
#   bash bench/gpu_run.sh [pytest arguments...]
# Writes under $OUT (or ./gpu-run): nvidia-smi.txt, versions.txt, pytest.log and report/
# (dropout-bench at 2**20..2**28, float32, p = 0.5: results.csv, plots, summary.md).
set -uo pipefail
OUT=${OUT:-gpu-run}
mkdir -p "$OUT"
if ls .whl/*.whl >/dev/null 2>&1; then  # numba-cuda 0.30 needs NumPy < 2.5 there
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site:$PWD
else
  export PYTHONPATH=$PWD
fi
export PYTHONUNBUFFERED=1
nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1
python3 - > "$OUT/versions.txt" 2>&1 <<'PY'
import platform, numpy, numba, numba_cuda, scipy
from numba import cuda
print("python", platform.python_version(), "numpy", numpy.__version__, "numba", numba.__version__,
      "numba-cuda", numba_cuda.__version__, "scipy", scipy.__version__)
try:
    import torch; print("torch", torch.__version__, torch.cuda.get_device_name())
except Exception as e: print("torch unavailable:", e)
print(cuda.get_current_device().name, "cc", cuda.get_current_device().compute_capability)
PY
cat "$OUT/versions.txt"
# the project is used from the working tree there (not installed), so its pytest plugin, which
# an install registers as an entry point, is loaded by name
python3 -m pytest -q -p no:cacheprovider -p reference.conformance.plugin -rs --durations=10 "${@:-tests}" 2>&1 | tee "$OUT/pytest.log" | tail -40
python3 -m bench.cli --sizes '2**20,2**24,2**26,2**28' --p 0.5 --dtypes float32 --backends cuda \
  --no-progress --out "$OUT/report"
