"""Where the thread pool starts to pay: ``python -m bench.studies.crossover`` prints, per size, the
fastest of many calls of the serial and the parallel compilation of the CPU forward kernel
(float32, no mask kept). ``kernels.threads.PARALLEL_MIN`` records the result."""

from __future__ import annotations

import time

import numba
import numpy as np

from kernels import cpu
from reference.stream import keep_threshold, scale_for, split_seed


def crossover(log2_sizes=range(10, 19), calls=300):
    k0, k1 = split_seed(1)
    rows = []
    for lg in log2_sizes:
        n = 1 << lg
        x, y = np.ones(n, np.float32), np.empty(n, np.float32)
        n_tiles = (n + cpu.TILE - 1) // cpu.TILE
        best = {}
        for name, which, chunks in (("parallel", 0, min(n_tiles, 8 * numba.get_num_threads())),
                                    ("serial", 1, 1)):
            kernel = cpu.compiled_kernels("regen", cpu.MODE_NONE, 0)[which]
            args = (x, y, cpu.EMPTY_BOOL, cpu.EMPTY_BITS, k0, k1, np.zeros(1, np.uint64), n, keep_threshold(0.5),
                    scale_for(0.5, np.float32), chunks, 0, chunks)
            kernel(*args)  # compile or load
            times = []
            for _ in range(calls):
                t = time.perf_counter()
                kernel(*args)
                times.append(time.perf_counter() - t)
            best[name] = min(times) * 1e6
        rows.append((lg, best["serial"], best["parallel"]))
    return rows


def main():
    print(f"threads: {numba.get_num_threads()}")
    for lg, serial, parallel in crossover():
        print(f"2^{lg:<2}  serial {serial:8.1f} us   parallel {parallel:8.1f} us   "
              f"{'pool pays' if parallel < serial else 'serial'}")


if __name__ == "__main__":
    main()
