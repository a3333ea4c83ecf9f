"""Two threads against one, side by side: ``python -m bench.studies.thread_speedup``

At 2^22 and 2^24 float32, a Numba ``prange`` copy and ``kernels.cpu.dropout_forward`` (mask not
kept, ``out=`` a touched buffer), each with ``numba.set_num_threads(1)`` and ``(2)`` in turn
(round robin, ``bench.timing.measure_interleaved``): the speed-up of 2 threads over 1 per pair,
median [p20, p80]. Run it a few times: on a shared machine the answer moves with what other
tenants do with the memory bandwidth.
"""

from __future__ import annotations

import argparse
import contextlib
import os

import numpy as np

from bench.timing import measure_interleaved, ratio_stats
from kernels import cpu


def _threads(n):
    import numba

    @contextlib.contextmanager
    def cm():
        old = numba.get_num_threads()
        numba.set_num_threads(n)
        try:
            yield
        finally:
            numba.set_num_threads(old)

    return cm


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--log2n", type=int, nargs="+", default=[22, 24])
    ap.add_argument("--repeats", type=int, default=25)
    args = ap.parse_args(argv)
    from numba import njit, prange

    @njit(parallel=True)
    def pcopy(x, y):
        for i in prange(x.size):
            y[i] = x[i]

    print(f"load average before {os.getloadavg()[0]:.2f}")
    print("| n | call | 2 threads over 1, per pair: median [p20, p80] (pairs) |")
    print("|---|---|---|")
    for log2n in args.log2n:
        x = np.ones(1 << log2n, np.float32)
        y = np.empty_like(x)
        y.fill(0)
        copy = lambda x=x, y=y: pcopy(x, y)  # noqa: E731
        fwd = lambda x=x, y=y: cpu.dropout_forward(x, 0.5, seed=1, out=y)  # noqa: E731
        il = measure_interleaved([copy, copy, fwd, fwd], repeats=args.repeats, min_repeats=args.repeats,
                                 budget_s=60, around=[_threads(1), _threads(2), _threads(1), _threads(2)])
        for name, one, two in (("prange copy", 0, 1), ("dropout forward, out=", 2, 3)):
            s = ratio_stats(il.ratios(one, two))
            print(f"| 2^{log2n} | {name} | {s['median']:.2f}x [{s['p20']:.2f}, {s['p80']:.2f}] ({s['pairs']}) |")
    print(f"load average after {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
