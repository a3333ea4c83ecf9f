"""Does the CPU kernels' speed depend on where the arrays lie? ``python -m bench.studies.placement``

Times ``kernels.cpu`` at 2^24 float32 (forward without a mask, backward from a stored bool
mask) with its input, output and mask starting at different byte offsets within a 4 KiB page,
round robin (one call of each placement per round, so the machine's drift hits all alike),
and prints each placement's median GB/s and the spread: slowest median over fastest.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from kernels import cpu

# (x, y, mask) byte offsets within a page: np.empty's own (large arrays land 16 bytes in),
# all aligned, spread apart, and nearly a page apart
PLACEMENTS = [(16, 16, 16), (0, 0, 0), (0, 1024, 2048), (0, 2048, 1024), (0, 64, 128), (0, 4032, 64)]


def placed(offset: int, n: int, dtype) -> np.ndarray:
    itemsize = np.dtype(dtype).itemsize
    buf = np.empty(n * itemsize + 8192, np.uint8)
    start = (-buf.ctypes.data) % 4096 + offset
    a = buf[start:start + n * itemsize].view(dtype)
    a.fill(1)
    return a


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--log2n", type=int, default=24)
    ap.add_argument("--rounds", type=int, default=15)
    args = ap.parse_args(argv)
    n = 1 << args.log2n
    cases = {}
    for xo, yo, mo in PLACEMENTS:
        x, y, m = placed(xo, n, np.float32), placed(yo, n, np.float32), placed(mo, n, np.bool_)
        cases[(xo, yo, mo)] = {
            "forward": (lambda x=x, y=y: cpu.dropout_forward(x, 0.5, seed=1, mask_format=None, out=y), 8 * n),
            "backward, stored bool": (lambda x=x, y=y, m=m: cpu.dropout_backward(x, 0.5, mask=m, out=y), 9 * n),
        }
    samples: dict[tuple, list[float]] = {(k, op): [] for k, ops in cases.items() for op in ops}
    for _ in range(2 + args.rounds):  # the first two rounds warm up
        for k, ops in cases.items():
            for op, (fn, _) in ops.items():
                t = time.perf_counter()
                fn()
                samples[(k, op)].append(time.perf_counter() - t)
    print(f"2^{args.log2n} float32, p = 0.5, median of {args.rounds} round-robin calls, GB/s (bytes read + written)\n")
    print("| x, y, mask offsets (bytes) | forward | backward, stored bool |")
    print("| --- | ---: | ---: |")
    gbs = {}
    for k, ops in cases.items():
        row = []
        for op, (_, nbytes) in ops.items():
            gbs[(k, op)] = nbytes / float(np.median(samples[(k, op)][2:])) / 1e9
            row.append(f"{gbs[(k, op)]:.1f}")
        print(f"| {k[0]}, {k[1]}, {k[2]} | " + " | ".join(row) + " |")
    for op in ("forward", "backward, stored bool"):
        v = [g for (k, o), g in gbs.items() if o == op]
        print(f"\n{op}: spread {max(v) / min(v):.2f}x (fastest over slowest placement)")


if __name__ == "__main__":
    main()
