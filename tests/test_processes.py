"""The CPU kernels inside real Python processes: fork and spawn pools, concurrent threads,
under every Numba threading layer this machine has, and a warm on-disk cache."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "tests" / "scripts" / "processes.py"
LAYERS = ["default", "omp", "workqueue", "tbb"]

pytestmark = pytest.mark.skipif(os.environ.get("NUMBA_ENABLE_CUDASIM") == "1",
                                reason="CPU processes: the core lane runs these")


def _run(args, layer="default", timeout=240):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("NUMBA_ENABLE_CUDASIM", None)
    if layer != "default":
        env["NUMBA_THREADING_LAYER"] = layer
    return subprocess.run([sys.executable, *args], env=env, cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


@pytest.mark.parametrize("layer", LAYERS)
@pytest.mark.parametrize("how", ["fork", "spawn", "threads"])
def test_pools_and_threads_give_the_serial_results(how, layer):
    if how == "spawn" and layer != "default":
        pytest.skip("spawn children start clean: the layer does not matter")
    r = _run([str(SCRIPT), how], layer)
    if r.returncode == 77:
        pytest.skip(f"threading layer {layer!r} not available here")
    assert r.returncode == 0, f"{how} under {layer}: exit {r.returncode}\n{r.stdout}\n{r.stderr[-3000:]}"


def test_cold_start_from_the_cache():
    """Once the on-disk cache is warm, a fresh process loads the kernels instead of compiling
    them, and ``import kernels`` imports neither numba nor numba.cuda. (Times are printed, not
    asserted: the machine is shared; the README quotes them.)"""
    code = "\n".join([
        "import sys, time",
        "t0 = time.perf_counter()",
        "import numpy as np, kernels",
        "t1 = time.perf_counter()",
        "lazy = 'numba' not in sys.modules",
        "kernels.cpu.dropout_forward(np.ones(1 << 20, np.float32), 0.5, seed=1)",
        "t2 = time.perf_counter()",
        # parallel or serial: the thread gate chooses by the machine's load (kernels/threads.py)
        "ds = kernels.cpu.compiled_kernels('regen', kernels.cpu.MODE_BOOL, 0)",
        "hits = sum(sum(d.stats.cache_hits.values()) for d in ds)",
        "misses = sum(sum(d.stats.cache_misses.values()) for d in ds)",
        "print(f'{t1 - t0:.3f} {t2 - t1:.3f}', lazy, 'numba.cuda' not in sys.modules, hits, misses)",
    ])
    _run(["-c", code])  # fills the cache if it was cold
    r = _run(["-c", code])
    assert r.returncode == 0, r.stderr
    import_s, first_call_s, lazy, no_cuda, hits, misses = r.stdout.split()
    print(f"import kernels {import_s} s, first forward call at 2^20 {first_call_s} s")
    assert lazy == "True", "import kernels imported numba"
    assert no_cuda == "True", "a CPU call imported numba.cuda"
    assert (int(hits), int(misses)) == (1, 0), f"kernel not loaded from the cache: {hits} hits, {misses} misses"


def test_small_calls_never_start_the_thread_pool():
    code = "\n".join([
        "import numpy as np",
        "from numba.np.ufunc import parallel",
        "from kernels import cpu, threads",
        "threads.cores_free = lambda n=0: 1  # as on an idle machine",
        "x = np.ones(threads.PARALLEL_MIN - 1, np.float32)",
        "y, m = cpu.dropout_forward(x, 0.5, seed=1)",
        "cpu.dropout_backward(x, 0.5, mask=m); cpu.dropout_backward(x, 0.5, seed=1)",
        "small = parallel._is_initialized",
        "cpu.dropout_forward(np.ones(threads.PARALLEL_MIN, np.float32), 0.5, seed=1)",
        "print(small, parallel._is_initialized)",
    ])
    r = _run(["-c", code])
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["False", "True"], "a small call started the pool, or a large one did not"
