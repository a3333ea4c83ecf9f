"""Where the time of a call "as users write it" goes: ``python -m bench.studies.as_called``

``y, _ = cpu.dropout_forward(x, p, seed=s)`` allocates its output; so does ``np.copy(x)``, the
fair ceiling. Both pay the kernel's page faults and zeroing of fresh memory on first touch.
This times, side by side (round robin, ratios per round: median and p20/p80), at 2^24 float32:
``np.copy``; the kernel as called; the kernel with ``out=`` a buffer touched before (no fault);
``np.empty_like(x).fill(0)`` (what fresh memory costs alone); and counts the minor page faults
of one call of each (``getrusage``), at 1 and 2 Numba threads.

``--first-touch``: instead, call after call in one process, what faulting a fresh array costs
from every thread (a ``prange`` fill of ``np.empty``), from one (``fill(0)``), and ``np.copy``.
"""

from __future__ import annotations

import argparse
import os
import resource
from pathlib import Path

import numpy as np

from bench.timing import measure_interleaved, ratio_stats
from kernels import cpu


def faults(fn) -> int:
    a = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    r = fn()
    b = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    del r
    return b - a


def variants(x, p):
    y = np.empty_like(x)
    y.fill(0)
    return {
        "np.copy(x)": lambda: np.copy(x),
        "as called": lambda: cpu.dropout_forward(x, p, seed=1)[0],
        "out= (touched buffer)": lambda: cpu.dropout_forward(x, p, seed=1, out=y)[0],
        "fresh memory: empty + fill(0)": lambda: np.empty_like(x).fill(0),
    }


def first_touch(n: int, rounds: int) -> dict[str, list[float]]:
    """Milliseconds per call, in call order: fresh memory faulted by the pool, by one thread,
    and ``np.copy`` (which faults its output from one thread)."""
    import time

    from numba import njit, prange

    @njit(parallel=True)
    def pfill(y):
        for i in prange(y.size):
            y[i] = 1.0

    x = np.ones(n, np.float32)
    pfill(np.empty_like(x))  # compile
    out: dict[str, list[float]] = {"prange fill of np.empty": [], "np.empty + fill(0)": [], "np.copy(x)": []}
    for _ in range(rounds):
        for name, fn in (("prange fill of np.empty", lambda: pfill(np.empty_like(x))),
                         ("np.empty + fill(0)", lambda: np.empty_like(x).fill(0)),
                         ("np.copy(x)", lambda: np.copy(x))):
            t0 = time.perf_counter()
            fn()
            out[name].append((time.perf_counter() - t0) * 1e3)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--log2n", type=int, default=24)
    ap.add_argument("--repeats", type=int, default=25)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--first-touch", action="store_true", help="per-call fault costs, in call order")
    args = ap.parse_args(argv)
    import numba

    n = 1 << args.log2n
    if args.first_touch:
        for name, ms in first_touch(n, args.repeats).items():
            print(f"{name}: " + ", ".join(f"{t:.1f}" for t in ms) + " ms")
        return
    x = np.random.default_rng(0).standard_normal(n).astype(np.float32)
    thp = Path("/sys/kernel/mm/transparent_hugepage/enabled")
    print(f"n = 2^{args.log2n} float32; load average before {os.getloadavg()[0]:.2f}; "
          f"transparent huge pages: {thp.read_text().strip() if thp.exists() else 'unknown'}")
    print("| threads | call | median ms | of np.copy's speed, per pair: median [p20, p80] | minor faults per call |")
    print("|---|---|---:|---|---:|")
    for t in args.threads:
        numba.set_num_threads(t)
        v = variants(x, 0.5)
        fns = list(v.values())
        il = measure_interleaved(fns, repeats=args.repeats, min_repeats=args.repeats, budget_s=60)
        for i, name in enumerate(v):
            med = float(np.median(il.timings[i].samples)) * 1e3
            s = ratio_stats(il.ratios(0, i))  # copy time / this time: % of the copy's speed
            f = faults(fns[i])
            print(f"| {t} | {name} | {med:.2f} | {100 * s['median']:.0f}% [{100 * s['p20']:.0f}, "
                  f"{100 * s['p80']:.0f}] ({s['pairs']}) | {f} |")
    print(f"load average after {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
