"""Dropout through Dask at scale: memory, throughput and the statistical checks (issue 13).

Three experiments, each written as a markdown file (with the command that made it) and JSON:

``big``      an array larger than this machine's memory (default 2^32 float32, 16 GiB) from a
             lazy deterministic source, through the "dask" backend on a LocalCluster of
             worker processes, reduced to the keep count and sums; reports the peak RSS of
             each worker and of the client, and the wall time. The same pass gives the keep
             rate and mean checks of the statistical battery (reference/conformance/stats) on every element.
``compare``  at a size that fits (default 2^28): the in-memory ``kernels.cpu`` against the
             Dask backend on 1 and 2 worker processes, on the same data (x persisted in the
             workers; forward with a bool mask kept, and forward + reductions), plus an exact
             check that the Dask result is the in-memory one (keep count and a
             position-weighted checksum of the output's bits).
``all``      both.

Run one at a time, on a quiet machine (``uptime`` is recorded)::

    python -m bench.studies.dask_scale big --n 2**32 --chunk 2**24 --workers 2 --out reports/dask
    python -m bench.studies.dask_scale compare --n 2**28 --chunk 2**24 --out reports/dask
    python -m bench.studies.dask_scale big --n 2**26 --out /tmp/d     # a one-minute smoke run
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import resource
import sys
import time
from pathlib import Path

import numpy as np

from bench.grid import parse_size

SEED = 0x5EED_0000_0000_0013  # > 2**32: both key words matter
OFFSET = 3  # not a multiple of 4
GOLDEN = np.uint64(0x9E3779B97F4A7C15)


# --- the lazy deterministic source --------------------------------------------------------


def source_values(start: int, stop: int) -> np.ndarray:
    """float32 values of global indices ``start .. stop - 1``: a cheap hash of the index,
    ``(2k + 1 - 2**24) / 2**24`` with ``k`` the top 24 bits of ``i * golden``; exact in
    float32, in (-1, 1), never 0 (the mean check divides by x)."""
    i = np.arange(start, stop, dtype=np.uint64)
    i *= GOLDEN  # wraps mod 2**64
    i >>= np.uint64(40)
    k = i.astype(np.int64)
    return ((2 * k + 1 - (1 << 24)).astype(np.float32)) * np.float32(2.0**-24)


def _source_block(block_info=None):
    lo, hi = block_info[None]["array-location"][0]
    return source_values(lo, hi)


def lazy_source(n: int, chunk: int):
    import dask.array as da

    chunks = (tuple(min(chunk, n - s) for s in range(0, n, chunk)),)
    return da.map_blocks(_source_block, chunks=chunks, dtype=np.float32, meta=np.empty(0, np.float32))


def _bits_checksum_block(y, block_info=None):
    """Position-weighted sum of the output's bit patterns, mod 2**64 (order-free, exact)."""
    lo = block_info[0]["array-location"][0][0]
    w = np.arange(lo, lo + y.size, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
    return np.array([np.sum(y.view(np.uint32).astype(np.uint64) * w, dtype=np.uint64)])


STATS = ("kept", "sum_y", "sum_x", "sum_x2", "sum_ratio")


def _stats_block(x, y, mask):
    """Keep count (from the bool mask) and the sums of y, x, x^2 and y/x of one block, in float64,
    a slice at a time (no float64 copy of the whole block)."""
    out = np.zeros(len(STATS))
    step = 1 << 20
    for lo in range(0, x.size, step):
        xs = x[lo:lo + step].astype(np.float64)
        ys = y[lo:lo + step].astype(np.float64)
        out += (np.count_nonzero(mask[lo:lo + step]), ys.sum(), xs.sum(), np.dot(xs, xs), (ys / xs).sum())
    return out


def stats_dask(x, y, mask):
    import dask.array as da

    parts = da.map_blocks(_stats_block, x, y, mask, chunks=((len(STATS),) * x.numblocks[0],), dtype=np.float64,
                          meta=np.empty(0, np.float64))
    return parts.reshape(x.numblocks[0], len(STATS)).sum(axis=0)


def bits_checksum_numpy(y: np.ndarray, step: int = 1 << 24) -> int:
    total = np.uint64(0)
    for lo in range(0, y.size, step):
        part = y[lo:lo + step]
        w = np.arange(lo, lo + part.size, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
        total += np.sum(part.view(np.uint32).astype(np.uint64) * w, dtype=np.uint64)
    return int(total)


def bits_checksum_dask(y):
    import dask.array as da

    parts = da.map_blocks(_bits_checksum_block, y, chunks=((1,) * y.numblocks[0],), dtype=np.uint64,
                          meta=np.empty(0, np.uint64))
    return parts.sum(dtype=np.uint64)


# --- measuring --------------------------------------------------------------------------


def _peak_rss_bytes() -> int:
    """This process's peak resident memory since it started. VmHWM, not getrusage's ru_maxrss:
    Linux carries a parent's peak into a child across fork + exec (the Nanny's worker
    processes), VmHWM belongs to the process's own address space."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB


def _load() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "n/a"


def _mem_total() -> int:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _gib(b) -> str:
    return f"{b / 2**30:.2f} GiB"


def _cluster(workers: int, numba_threads: int):
    from distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                           env={"NUMBA_NUM_THREADS": str(numba_threads)})
    return cluster, Client(cluster)


def _workers_peak(client) -> dict:
    return client.run(_peak_rss_bytes)


def _env() -> dict:
    import dask
    import distributed
    import numba

    return {"python": platform.python_version(), "numpy": np.__version__, "dask": dask.__version__,
            "distributed": distributed.__version__, "numba": numba.__version__, "cores": os.cpu_count(),
            "mem_total": _mem_total(), "machine": platform.machine()}


# --- the experiments ----------------------------------------------------------------------


def big(n: int, chunk: int, workers: int, p: float) -> dict:
    """Dropout of ``n`` lazily generated float32 through Dask, reduced; memory and statistics."""
    from scipy import stats

    from kernels import dask as kd
    from reference.conformance.stats import mean as stat_mean
    from reference.conformance.stats.budget import FAMILY_ALPHA
    from reference.conformance.stats.sampling import keep_prob, scale

    load_before = _load()
    cluster, client = _cluster(workers, max(1, (os.cpu_count() or 1) // workers))
    try:
        x = lazy_source(n, chunk)
        y, mask = kd.dropout_forward(x, p, seed=SEED, offset=OFFSET, mask_format="bool")
        sums = stats_dask(x, y, mask)
        client.run(lambda: None)  # workers up before the clock starts
        t0 = time.perf_counter()
        values = dict(zip(STATS, sums.compute().tolist()))
        wall = time.perf_counter() - t0
        worker_peaks = _workers_peak(client)
    finally:
        client.close()
        cluster.close()
    kept = int(values["kept"])
    q, s = keep_prob(p), scale(p)
    # keep rate: the battery's test (reference/conformance/stats/keep_rate.py), exact two-sided binomial
    keep_pv = float(stats.binomtest(kept, n, q).pvalue)
    # mean, the battery's statistic (reference/conformance/stats/mean.py): T = mean(y / x), exact null from
    # the binomial; its own p-value function, fed the mean that Dask computed

    class _Mean:  # np.mean(r) calls r.mean(): the battery's function sees T and n
        size = n

        def mean(self, axis=None, dtype=None, out=None):
            return values["sum_ratio"] / n

    mean_pv = stat_mean.mean_pvalue(_Mean(), p)
    # and the z-test of the brief: sum(y) against s q sum(x), variance s^2 q (1-q) sum(x^2)
    z = (values["sum_y"] - s * q * values["sum_x"]) / np.sqrt(s * s * q * (1 - q) * values["sum_x2"])
    z_pv = float(stats.norm.sf(abs(z)) * 2)
    alpha = FAMILY_ALPHA / 2
    return {
        "experiment": "big", "n": n, "chunk": chunk, "workers": workers, "p": p, "seed": SEED, "offset": OFFSET,
        "array_bytes": 4 * n, "wall_s": wall, "elements_per_s": n / wall,
        "worker_peak_rss": worker_peaks, "client_peak_rss": _peak_rss_bytes(),
        "kept": kept, "expected_kept": n * q, "keep_rate": kept / n, "keep_pvalue": keep_pv,
        "mean_ratio": values["sum_ratio"] / n, "mean_pvalue": mean_pv,
        "mean_y": values["sum_y"] / n, "mean_x": values["sum_x"] / n, "mean_z": float(z), "mean_z_pvalue": z_pv,
        "alpha": alpha, "passed": bool(keep_pv >= alpha and mean_pv >= alpha),
        "load_before": load_before, "load_after": _load(), "env": _env(),
    }


def _best(fn, repeats):
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times), times


def _dask_forward_once(client, x, p: float, runs) -> None:
    """One Dask forward with a bool mask, persisted in the workers and dropped: a new offset
    each call (``next(runs)``), so new keys and nothing already in memory; the same work."""
    from distributed import wait

    from kernels import dask as kd

    yn, mn = kd.dropout_forward(x, p, seed=SEED, offset=OFFSET + 8 * next(runs), mask_format="bool")
    yp, mp = client.persist([yn, mn])
    wait([yp, mp])
    client.cancel([yp, mp])
    del yp, mp


def _dask_reduce(y, m, out: dict) -> None:
    """The keep count, the sum and the bit checksum of one Dask forward, into ``out``."""
    import dask

    out["kept"], out["sum"], out["checksum"] = dask.compute(
        m.sum(dtype=np.int64), y.sum(dtype=np.float64), bits_checksum_dask(y))


def _dask_count_and_sum(y, m) -> None:
    import dask

    dask.compute(m.sum(dtype=np.int64), y.sum(dtype=np.float64))


def compare(n: int, chunk: int, p: float, repeats: int) -> dict:
    """In-memory kernels.cpu against Dask on 1 and 2 workers, the same data."""
    from distributed import wait

    from kernels import cpu
    from kernels import dask as kd

    load_before = _load()
    rows = []
    # in memory: x materialized from the same source
    x_np = np.empty(n, dtype=np.float32)
    for lo in range(0, n, chunk):
        x_np[lo:lo + chunk] = source_values(lo, min(n, lo + chunk))
    cpu.dropout_forward(x_np[: 1 << 16], p, seed=SEED, offset=OFFSET)  # compiled / loaded outside the clock
    out = {}

    def cpu_forward():
        out["y"], out["m"] = cpu.dropout_forward(x_np, p, seed=SEED, offset=OFFSET, mask_format="bool")

    best, times = _best(cpu_forward, repeats)
    rows.append({"what": "kernels.cpu, in memory", "op": "forward, bool mask", "best_s": best, "times": times})

    def cpu_reduce():
        y, m = cpu.dropout_forward(x_np, p, seed=SEED, offset=OFFSET, mask_format="bool")
        out["kept"], out["sum"] = int(m.sum(dtype=np.int64)), float(y.sum(dtype=np.float64))

    best, times = _best(cpu_reduce, repeats)
    rows.append({"what": "kernels.cpu, in memory", "op": "forward + keep count + sum", "best_s": best, "times": times})
    want_kept, want_sum = out["kept"], out["sum"]
    want_checksum = bits_checksum_numpy(out["y"])
    del out["y"], out["m"]
    inmem_peak = _peak_rss_bytes()
    checks = []
    cores = os.cpu_count() or 1
    for workers in (1, 2):
        cluster, client = _cluster(workers, max(1, cores // workers))
        try:
            x = client.persist(lazy_source(n, chunk))
            wait(x)
            y, m = kd.dropout_forward(x, p, seed=SEED, offset=OFFSET, mask_format="bool")
            dask_forward = functools.partial(_dask_forward_once, client, x, p, iter(range(1, 1000)))
            dask_forward()  # warm-up: the kernels load from the on-disk cache in each worker
            best, times = _best(dask_forward, repeats)
            label = (f"dask, {workers} worker process{'es' if workers > 1 else ''} "
                     f"(NUMBA_NUM_THREADS={max(1, cores // workers)})")
            rows.append({"what": label, "op": "forward, bool mask", "best_s": best, "times": times})
            _dask_reduce(y, m, out)
            best, times = _best(functools.partial(_dask_count_and_sum, y, m), repeats)
            rows.append({"what": label, "op": "forward + keep count + sum", "best_s": best, "times": times})
            checks.append({"workers": workers, "kept_equal": int(out["kept"]) == want_kept,
                           "checksum_equal": int(out["checksum"]) == want_checksum,
                           "sum_rel_diff": abs(float(out["sum"]) - want_sum) / max(1.0, abs(want_sum)),
                           "worker_peak_rss": _workers_peak(client)})
        finally:
            client.close()
            cluster.close()
    for r in rows:
        r["elements_per_s"] = n / r["best_s"]
        r["gb_per_s"] = (4 + 4 + 1) * n / r["best_s"] / 1e9  # x read, y and the bool mask written
    return {"experiment": "compare", "n": n, "chunk": chunk, "p": p, "repeats": repeats, "rows": rows,
            "checks": checks, "inmem_client_peak_rss": inmem_peak, "load_before": load_before, "load_after": _load(),
            "env": _env()}


# --- reports ------------------------------------------------------------------------------


def _command() -> str:
    return "python -m bench.studies.dask_scale " + " ".join(sys.argv[1:])


def _pow2(n: int) -> str:
    return f"2^{n.bit_length() - 1}" if n and n & (n - 1) == 0 else str(n)


def markdown_big(r: dict) -> str:
    peaks = r["worker_peak_rss"]
    lines = [
        f"# Dask at scale: {_pow2(r['n'])} float32 ({_gib(r['array_bytes'])}) through dropout",
        "",
        f"Command: `{_command()}`",
        "",
        f"Machine: {r['env']['cores']} cores, {_gib(r['env']['mem_total'])} memory ({r['env']['machine']}); "
        f"dask {r['env']['dask']}, distributed {r['env']['distributed']}, numba {r['env']['numba']}, "
        f"NumPy {r['env']['numpy']}. Load average before / after: {r['load_before']} / {r['load_after']} "
        "(a shared machine).",
        "",
        f"A lazy deterministic source (`bench.studies.dask_scale.source_values`, a hash of the index) in chunks of "
        f"{_pow2(r['chunk'])}, dropout with the `\"dask\"` backend (p = {r['p']}, seed = {r['seed']:#x}, "
        f"offset = {r['offset']}, bool mask) on a `LocalCluster` of {r['workers']} worker processes, then the "
        "keep count (from the bool mask) and the float64 sums of y, x, x^2 and y/x, in one `compute`.",
        "",
        "| quantity | value |",
        "| --- | ---: |",
        f"| array size | {_gib(r['array_bytes'])} ({r['n']:,} elements) |",
        f"| wall time | {r['wall_s']:.1f} s ({r['elements_per_s'] / 1e6:.0f} M elements/s) |",
        *[f"| peak RSS, worker {i + 1} | {_gib(b)} |" for i, b in enumerate(peaks.values())],
        f"| peak RSS, client (scheduler in-process) | {_gib(r['client_peak_rss'])} |",
        f"| peak RSS, all processes | {_gib(sum(peaks.values()) + r['client_peak_rss'])} "
        f"({100 * (sum(peaks.values()) + r['client_peak_rss']) / r['array_bytes']:.1f}% of the array) |",
        "",
        "## Statistical checks on all elements (the battery's keep-rate and mean tests)",
        "",
        "| check | statistic | p-value |",
        "| --- | --- | ---: |",
        f"| keep rate (exact two-sided binomial, q = floor((1-p) 2^32)/2^32) | kept {r['kept']:,} of {r['n']:,} "
        f"(expected {r['expected_kept']:,.0f}), rate {r['keep_rate']:.8f} | {r['keep_pvalue']:.3g} |",
        f"| mean of y/x = 1 (battery's exact binomial null, reference/conformance/stats/mean.py) "
        f"| {r['mean_ratio']:.8f} | {r['mean_pvalue']:.3g} |",
        f"| mean of y against mean of x (z, variance x^2 p/(1-p)) | mean y {r['mean_y']:.3e}, mean x "
        f"{r['mean_x']:.3e}, z = {r['mean_z']:.2f} | {r['mean_z_pvalue']:.3g} |",
        "",
        f"Pass at alpha = {r['alpha']:g} (the battery's family budget 1e-4 over the two battery tests): "
        f"**{'yes' if r['passed'] else 'NO'}**.",
        "",
    ]
    return "\n".join(lines)


def markdown_compare(r: dict) -> str:
    lines = [
        f"# Dask against in-memory `kernels.cpu`: {_pow2(r['n'])} float32 ({_gib(4 * r['n'])})",
        "",
        f"Command: `{_command()}`",
        "",
        f"Machine: {r['env']['cores']} cores, {_gib(r['env']['mem_total'])}; dask {r['env']['dask']}. Load average "
        f"before / after: {r['load_before']} / {r['load_after']} (a shared machine: compare rows of this run only).",
        "",
        f"Same data (the lazy source, materialized in memory for `kernels.cpu`, persisted in the workers for "
        f"Dask, chunks of {_pow2(r['chunk'])}), p = {r['p']}, bool mask. Fastest of {r['repeats']} runs. "
        "\"forward\": the outputs kept in memory (`client.persist`); \"+ keep count + sum\": reduced to "
        "two numbers. GB/s counts x read, y and the mask written (9 bytes per element).",
        "",
        "| what | operation | best | M elements/s | GB/s |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    for row in r["rows"]:
        lines.append(f"| {row['what']} | {row['op']} | {row['best_s']:.3f} s | {row['elements_per_s'] / 1e6:.0f} | "
                     f"{row['gb_per_s']:.2f} |")
    lines += ["", "Exactness at this size (Dask against the in-memory result):", ""]
    for c in r["checks"]:
        lines.append(f"- {c['workers']} worker(s): keep count equal: {c['kept_equal']}, position-weighted checksum "
                     f"of y's bits equal: {c['checksum_equal']}, sum relative difference {c['sum_rel_diff']:.1e} "
                     f"(summation order); worker peak RSS "
                     + ", ".join(_gib(b) for b in c["worker_peak_rss"].values()))
    lines.append("")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.studies.dask_scale", description=__doc__.split("\n\n")[0])
    ap.add_argument("experiment", choices=("big", "compare", "all"))
    ap.add_argument("--n", default=None, help="elements (such as 2**32 or 1e9); default 2**32 for big, "
                    "2**28 for compare")
    ap.add_argument("--chunk", default="2**24", help="elements per chunk (default 2**24)")
    ap.add_argument("--workers", type=int, default=2, help="worker processes for big (default 2)")
    ap.add_argument("--p", type=float, default=0.5)
    ap.add_argument("--repeats", type=int, default=3, help="timed runs per row of compare (default 3)")
    ap.add_argument("--out", type=Path, default=None, help="write <experiment>.md and .json here")
    args = ap.parse_args(argv)

    def parse(text, default):
        if not text:
            return default
        try:
            return parse_size(text)  # 2**32, 2^32, 4294967296 or 4.3e9
        except ValueError as exc:
            ap.error(str(exc))

    chunk = parse(args.chunk, 1 << 24)
    results = []
    if args.experiment in ("big", "all"):
        r = big(parse(args.n, 1 << 32) if args.experiment == "big" else 1 << 32, chunk, args.workers, args.p)
        results.append((f"big-{_pow2(r['n']).replace('^', '')}", r, markdown_big(r)))
    if args.experiment in ("compare", "all"):
        r = compare(parse(args.n, 1 << 28) if args.experiment == "compare" else 1 << 28, chunk, args.p, args.repeats)
        results.append((f"compare-{_pow2(r['n']).replace('^', '')}", r, markdown_compare(r)))
    for stem, r, md in results:
        print(md)
        if args.out:
            args.out.mkdir(parents=True, exist_ok=True)
            (args.out / f"{stem}.md").write_text(md)
            (args.out / f"{stem}.json").write_text(json.dumps(r, indent=1, default=str) + "\n")
    return 0 if all(r.get("passed", True) and all(c["kept_equal"] and c["checksum_equal"]
                                                  for c in r.get("checks", [])) for _, r, _ in results) else 1


if __name__ == "__main__":
    sys.exit(main())
