"""Where sharing a call with the worker threads starts to pay: ``python -m bench.studies.crossover``
prints, per size, the median of many calls of ``kernels.cpu.dropout_forward`` (float32, no mask
kept, ``out=`` given) run by the serial compilation and by the parallel one with every thread,
taken alternately (as if every core were free: the busy-core check is off for the parallel
calls). ``kernels.threads.PARALLEL_MIN`` records
the result; run it on an idle machine."""

from __future__ import annotations

import time

import numba
import numpy as np

from kernels import cpu, threads


def crossover(log2_sizes=range(11, 21), calls=300):
    rows = []
    saved = threads.PARALLEL_MIN, threads.cores_free
    threads.cores_free = lambda n=0: 1
    try:
        for lg in log2_sizes:
            n = 1 << lg
            x, y = np.ones(n, np.float32), np.empty(n, np.float32)
            times: dict[str, list[float]] = {"serial": [], "parallel": []}
            for _ in range(calls):
                for how, gate in (("serial", 1 << 62), ("parallel", 0)):
                    threads.PARALLEL_MIN = gate
                    start = time.perf_counter()
                    cpu.dropout_forward(x, 0.5, seed=1, mask_format=None, out=y)
                    times[how].append(time.perf_counter() - start)
            rows.append((lg, float(np.median(times["serial"])) * 1e6, float(np.median(times["parallel"])) * 1e6))
    finally:
        threads.PARALLEL_MIN, threads.cores_free = saved
    return rows


def main():
    if numba.config.NUMBA_NUM_THREADS < 2:
        print("Numba sees one core: nothing to share")
        return
    for lg, one, two in crossover():
        print(f"2^{lg:<2}  serial {one:8.1f} us   {numba.get_num_threads()} threads {two:8.1f} us   "
              f"{'sharing pays' if two < one else 'serial'}")


if __name__ == "__main__":
    main()
