"""Run by tests/test_processes.py in a fresh interpreter: ``processes.py fork|spawn|threads``.

Uses the CPU kernels in this process first (so a forked child inherits a started thread
pool), then compares what the pool or the threads give with this process's serial results.
Exit 0: identical; 1: different; 77: the requested Numba threading layer is not available.
"""

from __future__ import annotations

import multiprocessing as mp
import sys
import threading

import numba
import numpy as np

from kernels import cpu, threads

N = 1 << 17  # above threads.PARALLEL_MIN: the parallel compilation runs
SEEDS = range(8)


def job(seed):
    x = np.random.default_rng(seed).standard_normal(N).astype(np.float32)
    y, bits = cpu.dropout_forward(x, 0.5, seed=seed, offset=3, mask_format="bits")
    return y.tobytes() + bits.tobytes() + cpu.dropout_backward(x, 0.5, seed=seed).tobytes()


def main(how):
    threads.cores_free = lambda n=0: 1  # use the pool even on a busy machine: the bits are the point here
    layer_before = numba.config.THREADING_LAYER
    try:
        serial = [job(s) for s in SEEDS]
    except ValueError as e:  # "No threading layer could be loaded" for a requested layer
        print(e)
        return 77
    assert threads.parallel_state()["pool_used"], "the parallel kernel never ran"
    print("threading layer:", numba.threading_layer())
    if how in ("fork", "spawn"):
        with mp.get_context(how).Pool(2) as pool:
            same = pool.map_async(job, SEEDS).get(timeout=120) == serial  # a hang fails, not stalls
    else:
        results = []  # (seed, result) from 4 threads x 25 calls at once
        def work(t):
            results.extend((s % 8, job(s % 8)) for s in range(t, t + 25))
        ts = [threading.Thread(target=work, args=(t,)) for t in range(4)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        same = len(results) == 100 and all(r == serial[s] for s, r in results)
    assert layer_before == numba.config.THREADING_LAYER, "the user's Numba configuration changed"
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
