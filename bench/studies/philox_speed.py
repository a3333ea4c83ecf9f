"""Issue 12 harness: the CPU dropout kernels against a same-run Numba ``prange`` copy.

``python -m bench.studies.philox_speed [--sizes 24 26] [--dtypes float32 float64] [--repeats 15]``

Times, in one run, round robin (one call of each case per round, so drift hits all alike):

* ``copy``: ``out[i] = x[i]`` under ``prange`` (the ceiling);
* ``cpu``: the public ``kernels.cpu.dropout_forward`` as it is in the working tree (mask
  ``None``, ``"bits"``, ``"bool"``; ``"bool"`` allocates a fresh mask per call, as users get
  it), and its regen kernel called directly with a reused bool mask.

Arrays come from ``np.empty`` as users allocate them (input filled, output touched once
before timing). GB/s counts bytes read plus written (x, y, and the mask when one is
written). Medians and minimums of ``--repeats`` calls; % of copy from the medians.

Also measured: the tile fill alone (one thread, L1-resident scratch) in ns and cycles per
4-word Philox block, for kernels/philox_cpu.py's fills; cycles from a clock measured with a
dependent ``imul`` chain (3 cycles per ``imul`` + 1 per ``xor`` on Zen 3/4/5) and from
/proc/cpuinfo's MHz.
"""

from __future__ import annotations

import argparse
import os
import re
import time

import numpy as np
from numba import get_num_threads, njit, prange

from kernels import philox_cpu as P
from reference.stream import keep_threshold, scale_for, split_seed

SEED, P_DROP = 1234, 0.5

# znver3's features (AVX2, no AVX-512), for --avx2 on a machine that has AVX-512
AVX2_FEATURES = ("+64bit,+adx,+aes,+avx,+avx2,+bmi,+bmi2,+clflushopt,+clwb,+clzero,+cmov,+crc32,+cx16,+cx8,"
                 "+f16c,+fma,+fsgsbase,+fxsr,+invpcid,+lzcnt,+mmx,+movbe,+mwaitx,+pclmul,+pku,+popcnt,+prfchw,"
                 "+rdpid,+rdpru,+rdrnd,+rdseed,+sahf,+sha,+sse,+sse2,+sse3,+sse4.1,+sse4.2,+sse4a,+ssse3,+vaes,"
                 "+vpclmulqdq,+wbnoinvd,+xsave,+xsavec,+xsaveopt,+xsaves,-avx512f")


@njit(parallel=True, nogil=True)
def _pcopy(x, out):
    for i in prange(x.size):
        out[i] = x[i]


@njit(nogil=True)
def _clock_chain(n, x):
    # dependent chain: xor (1 cycle) then imul r64 (3 cycles) per iteration
    for _ in range(n):
        x = (x ^ np.uint64(0x9E3779B97F4A7C15)) * np.uint64(0xD2511F53)
    return x


def measure_ghz() -> float:
    _clock_chain(10, np.uint64(1))
    n = 20_000_000
    best = 1e9
    for _ in range(5):  # CPU time of this thread: the shared machine's time slicing drops out
        t = time.thread_time()
        _clock_chain(n, np.uint64(3))
        best = min(best, time.thread_time() - t)
    return 4 * n / best / 1e9


def cpuinfo_mhz() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            m = re.findall(r"cpu MHz\s*:\s*([\d.]+)", f.read())
        return "/".join(sorted(set(m)))
    except OSError:
        return "?"


# --- the tile fill alone -------------------------------------------------------------------

def _fill_timers():
    pf, ps = P.fill_words, P.fill_stream

    @njit(nogil=True)
    def soa(w0, w1, w2, w3, words, reps, nb, k0, k1):
        for r in range(reps):
            pf(w0, w1, w2, w3, np.uint64(r * nb + 1), nb, k0, k1)

    @njit(nogil=True)
    def stream(w0, w1, w2, w3, words, reps, nb, k0, k1):
        for r in range(reps):
            ps(words, np.uint64(r * nb + 1), nb, k0, k1)

    return {"fill_words (SoA)": soa, "fill_stream (stream order, used by kernels.cpu)": stream}


def time_fills(ghz: float) -> list[str]:
    from kernels import cpu

    nb = cpu.TILE // 4
    w = [np.empty(cpu.SCRATCH // 4, np.uint32) for _ in range(4)]
    words = np.empty(cpu.SCRATCH, np.uint32)
    k0, k1 = split_seed(0xDEADBEEF12345678)
    reps = 4000
    lines = []
    for name, f in _fill_timers().items():
        f(*w, words, 2, nb, k0, k1)
        ts = []
        for _ in range(15):
            t = time.thread_time()  # one thread: its CPU time (immune to time slicing)
            f(*w, words, reps, nb, k0, k1)
            ts.append(time.thread_time() - t)
        per = np.array(ts) / (reps * nb)
        lines.append(f"| {name} | {np.median(per) * 1e9:.3f} | {per.min() * 1e9:.3f} | "
                     f"{np.median(per) * ghz * 1e9:.2f} | {per.min() * ghz * 1e9:.2f} |")
    return lines


# --- whole kernels -----------------------------------------------------------------------

def _cases(n, dtype):
    from kernels import cpu

    rng = np.random.default_rng(0)
    x = np.empty(n, dtype=dtype)
    x[:] = rng.random(n, dtype=dtype) * 2 - 1
    y = np.empty(n, dtype=dtype)
    y.fill(0)
    mask_bool = np.empty(n, dtype=np.bool_)
    mask_bool.fill(False)
    mask_bits = np.empty((n + 7) // 8, dtype=np.uint8)
    mask_bits.fill(0)
    k0, k1 = split_seed(SEED)
    t = keep_threshold(P_DROP)
    scale = scale_for(P_DROP, dtype)
    n_tiles = (n + cpu.TILE - 1) // cpu.TILE
    n_chunks = min(n_tiles, 8 * get_num_threads())
    eb = np.empty(0, np.uint8)
    item = np.dtype(dtype).itemsize
    data = 2 * n * item

    cases = {"copy": (lambda: _pcopy(x, y), data)}
    cases["cpu fwd None"] = (lambda: cpu.dropout_forward(x, P_DROP, seed=SEED, mask_format=None, out=y), data)
    cases["cpu fwd bits"] = (lambda: cpu.dropout_forward(x, P_DROP, seed=SEED, mask_format="bits", out=y),
                             data + n // 8)
    cases["cpu fwd bool (fresh)"] = (lambda: cpu.dropout_forward(x, P_DROP, seed=SEED, mask_format="bool", out=y),
                                     data + n)
    cases["cpu bwd regen"] = (lambda: cpu.dropout_backward(x, P_DROP, seed=SEED, out=y), data)
    kern = cpu.compiled_kernels("regen", cpu.MODE_BOOL, 0)[0]  # the same kernel, a mask buffer reused
    cases["cpu kernel bool (reused)"] = (
        lambda: kern(x, y, mask_bool, eb, k0, k1, np.zeros(1, np.uint64), n, t, scale, n_chunks, 0, n_chunks),
        data + n)
    return cases


def time_sizes(sizes, dtypes, repeats: int, ghz: float) -> list[str]:
    lines = ["| n | dtype | case | median ms | min ms | GB/s (median) | % of copy | cycles/block/core |",
             "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |"]
    threads = get_num_threads()
    for dtype in dtypes:
        for lg in sizes:
            n = 1 << lg
            cases = _cases(n, dtype)
            for fn, _ in cases.values():
                fn()
                fn()
            samples: dict[str, list[float]] = {k: [] for k in cases}
            for _ in range(repeats):
                for k, (fn, _) in cases.items():
                    t = time.perf_counter()
                    fn()
                    samples[k].append(time.perf_counter() - t)
            copy_med = float(np.median(samples["copy"]))
            for k, (_, nbytes) in cases.items():
                med, mn = float(np.median(samples[k])), float(np.min(samples[k]))
                cyc = med * ghz * 1e9 * threads / (n / 4)
                pct = 100 * copy_med / med * nbytes / (2 * n * np.dtype(dtype).itemsize)
                lines.append(f"| 2^{lg} | {np.dtype(dtype).name} | {k} | {med * 1e3:.2f} | {mn * 1e3:.2f} | "
                             f"{nbytes / med / 1e9:.1f} | {pct:.0f}% | {cyc:.1f} |")
            del cases, samples
    return lines


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[24, 26], help="log2 sizes (default 24 26)")
    ap.add_argument("--dtypes", nargs="+", default=["float32", "float64"])
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--no-fill", action="store_true", help="skip the one-thread fill timings")
    ap.add_argument("--avx2", action="store_true",
                    help="compile for AVX2 without AVX-512 (znver3), as on a machine without it: re-runs "
                         "this command with NUMBA_CPU_NAME/NUMBA_CPU_FEATURES set and its own NUMBA_CACHE_DIR")
    args = ap.parse_args(argv)
    if args.avx2 and os.environ.get("NUMBA_CPU_NAME") != "znver3":
        import sys
        import tempfile

        env = dict(os.environ, NUMBA_CPU_NAME="znver3", NUMBA_CPU_FEATURES=AVX2_FEATURES,
                   NUMBA_CACHE_DIR=os.path.join(tempfile.gettempdir(), "philox_speed_avx2_cache"))
        rest = list(sys.argv[1:] if argv is None else argv)
        os.execve(sys.executable, [sys.executable, "-m", "bench.studies.philox_speed", *rest], env)
    import llvmlite.binding as ll

    llvm_cpu = os.environ.get("NUMBA_CPU_NAME") or ll.get_host_cpu_name()
    print(f"uptime: {os.getloadavg()}; threads {get_num_threads()}; LLVM cpu {llvm_cpu}")
    ghz = measure_ghz()
    print(f"clock from an imul chain: {ghz:.2f} GHz; /proc/cpuinfo MHz: {cpuinfo_mhz()}")
    if not args.no_fill:
        print("\nTile fill alone, one thread, one tile (TILE / 4 blocks) per call (L1):\n")
        print("| fill | ns/block (median) | ns/block (min) | cycles/block (median) | cycles/block (min) |")
        print("| --- | ---: | ---: | ---: | ---: |")
        print("\n".join(time_fills(ghz)))
    print(f"\nWhole kernels, p = {P_DROP}, {args.repeats} calls each, round robin "
          "(% of copy: bytes/s against the copy's bytes/s; cycles per Philox block per core from the median):\n")
    print("\n".join(time_sizes(args.sizes, [np.dtype(d) for d in args.dtypes], args.repeats, ghz)))
    print(f"\nuptime after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
