"""``dropout-bench``: run the benchmark sweep and write a report folder.

Examples::

    dropout-bench                      # the full sweep on this machine -> reports/<device>/
    dropout-bench --quick --out /tmp/r # a small sweep (CI); without --out: reports/_scratch/<device>/
    dropout-bench --backends cuda --sizes 2**20,2**24,2**26,2**28 --p 0.5 --dtypes float32
    dropout-bench --from-json .benchmarks/run.json   # pytest-benchmark JSON -> same report
    dropout-bench --impl textbook-numpy --quick       # add an implementation (IMPL string)

The ceiling (a copy) and the peer (PyTorch, where installed) of every device in the run
are added to the named backends unless ``--no-peers``. ``--impl IMPL`` (repeatable, or
comma-separated) adds ``reference.conformance.loader.implementation(IMPL)`` as a provider at the points
its capabilities cover.

The default and ``--quick`` sweeps also measure (unless ``--no-studies``): the per-call table
(microseconds per call at 2^8..2^16, with the textbook NumPy dropout and PyTorch), the "as
called" rows (``dropout_forward(x, p, seed=s)``, new output and mask, against ``np.copy(x)``)
and the "under load" rows (``bench.underload``: all threads vs one thread while a busy
process of our own spins on one core). Every % of the copy and speedup over PyTorch is a
median of side-by-side pairs (``bench.sweep``).
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from pathlib import Path

from reference import vocab

from . import env, grid, report, sweep, timing
from . import providers as prov_mod


def _checked(parse):
    """``parse`` for argparse: its ValueError's own words, not "invalid parse_floats value"."""
    def checked(text):
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    return checked


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="dropout-bench",
        description="Benchmark the dropout backends against a copy (the ceiling) and PyTorch (the peer); "
        "write results.csv, PNG plots and summary.md to reports/<device>/.",
    )
    ap.add_argument("--quick", action="store_true",
                    help="small sweep (sizes 2^10, 2^14, 2^18; float32, and bfloat16 at 2^14; p 0.25/0.5/0.75; "
                    "channel and in-place rows at 2^14 and 2^18): about a minute")
    ap.add_argument("--backends", type=lambda s: [x.strip() for x in s.split(",") if x.strip()],
                    help="comma-separated providers: backends of kernels.BACKENDS (reference, cpu, cuda), "
                    "'copy'/'torch' or copy-cpu, torch-cuda, ... (default: every backend here; "
                    "in the CUDA simulator the cuda backend only when named)")
    ap.add_argument("--no-peers", action="store_true",
                    help="do not add the copy ceiling and PyTorch of each device automatically")
    ap.add_argument("--sizes", type=_checked(grid.parse_sizes),
                    help="element counts: '2**10,2**20', '1024,4096', or a power-of-two range '2**10..2**24'")
    ap.add_argument("--p", type=_checked(grid.parse_floats),
                    help="drop probabilities, e.g. '0.1,0.5,0.9' (default 0.5)")
    ap.add_argument("--dtypes", type=_checked(grid.parse_dtypes),
                    help="comma-separated of float32, float64, float16, bfloat16 (default with --sizes etc.: all four)")
    ap.add_argument("--operations", type=_checked(grid.parse_operations),
                    help="comma-separated of forward, backward (elementwise), forward_channel, backward_channel "
                    "(channel dropout, noise_shape (N, C, 1, 1) of an (N, C, 32, 32) map), forward_inplace, "
                    "backward_inplace (out=x / out=grad_y); default all")
    ap.add_argument("--impl", action="append", type=_checked(grid.parse_impls), metavar="IMPL",
                    help="add an implementation to the sweep: a registry name (textbook-numpy, torch-dropout, "
                    "quant8, ...) or package.module:attribute; repeatable or comma-separated. It runs at the "
                    "elementwise points (operations, masks, dtypes) it supports; the others are skipped")
    ap.add_argument("--masks", type=_checked(grid.parse_masks),
                    help="mask formats: none, bool, bits (default all; for backward, none = regenerated)")
    ap.add_argument("--out", type=Path, help="report folder (default reports/<device-name>; with --quick "
                    f"{SCRATCH}/<device-name>, so that a quick run never replaces a full report)")
    ap.add_argument("--repeats", type=int, help="most samples per point (default 25; --quick 5)")
    ap.add_argument("--warmup", type=int, default=timing.WARMUP,
                    help=f"untimed calls before sampling (default {timing.WARMUP})")
    ap.add_argument("--budget", type=float,
                    help="seconds of sampling per point (half below 2^20) before stopping at >= 5 samples "
                    "(default 0.6; --quick 0.05)")
    ap.add_argument("--passes", type=int,
                    help="run the grid this many times: each point's absolute time is its fastest pass, "
                    "its side-by-side ratios pool the pairs of every pass (default 1)")
    ap.add_argument("--no-studies", action="store_true",
                    help="only the grid: no per-call, as-called or under-load rows")
    ap.add_argument("--wait-idle", type=float, default=0.0, metavar="SECONDS",
                    help="before each CPU point wait up to SECONDS for other processes to use < 0.25 cores, "
                    "and re-measure a point they disturbed (twice at most); default 0: no waiting "
                    "(the load is recorded in the other_load column either way)")
    ap.add_argument("--wait-total", type=float, default=600.0, metavar="SECONDS",
                    help="stop waiting for idle after SECONDS of waiting in all (default 600)")
    ap.add_argument("--from-json", type=Path, metavar="FILE",
                    help="convert a pytest-benchmark --benchmark-json FILE into the same CSV/plots/summary; "
                    "runs nothing")
    ap.add_argument("--no-plots", action="store_true", help="write the CSV and summary only")
    ap.add_argument("--no-progress", action="store_true", help="no progress bar")
    ap.add_argument("--list", action="store_true", help="print the grid points and exit")
    return ap


SCRATCH = "reports/_scratch"  # gitignored (under $DROPOUT_BENCH_REPORTS where that is set)


def _default_backends() -> list[str]:
    names = prov_mod.backend_names()
    if vocab.cuda_simulated():
        names = [n for n in names if n != "cuda"]  # the simulator runs ~3000 elements/s
    return names


def _grids(args, providers) -> list[grid.Grid]:
    names = tuple(n for n in providers if n not in getattr(args, "study_only", ()))
    gpu = any(p.device == "cuda" for p in providers.values())
    custom = args.sizes or args.p or args.dtypes or args.operations or args.masks
    if not custom:
        grids = grid.quick_grids(names) if args.quick else grid.default_grids(names, gpu=gpu)
        return grids + ([] if args.no_studies else _study_grids(args, providers))
    sizes: tuple[int, ...]
    dtypes: tuple[str, ...]
    if args.quick:
        sizes, dtypes = (2**10, 2**14, 2**18), ("float32", "bfloat16")
    else:
        sizes = grid.pow2_range(10, 28 if gpu else 24, 2 if gpu else 1)
        dtypes = vocab.DTYPES
    return [grid.Grid(
        "custom", names,
        sizes=args.sizes or sizes,
        ps=args.p or (0.5,),
        dtypes=args.dtypes or dtypes,
        operations=args.operations or grid.OPERATIONS,
        mask_formats=args.masks or grid.SWEEP_MASK_FORMATS,
        max_size=dict(grid.SLOW_CAP) if args.sizes else dict(grid.SLOW_CAP, **grid.CPU_CAP),
    )]


TEXTBOOK = "textbook-numpy"


def _study_grids(args, providers) -> list[grid.Grid]:
    """The per-call grid (every provider, and the textbook NumPy dropout where the peers are
    wanted) and the as-called grid (the fast backends, the copy and PyTorch) of each device."""
    names = tuple(providers)
    per_call = names + ((TEXTBOOK,) if TEXTBOOK in providers else ())
    grids = [grid.per_call_grid(per_call)]
    for device in dict.fromkeys(p.device for p in providers.values()):
        on = tuple(name for name, p in providers.items() if p.device == device and name != "reference"
                   and p.kind != "impl")
        n = grid.QUICK_AS_CALLED_N if args.quick else grid.AS_CALLED_N.get(device, 2**24)
        caps = dict(grid.SLOW_CAP, **grid.CPU_CAP) if device == "cuda" else {}
        if on:
            grids.append(grid.Grid("as-called", on, (n,), operations=grid.AS_CALLED, mask_formats=(None, "bool"),
                                   max_size=caps))
    return grids


def _default_out(args, df) -> Path:
    """Where a report goes without --out: reports/<device>, or for --quick the gitignored
    reports/_scratch/<device> (said on stderr), so a quick run never replaces a full report."""
    if not args.quick:
        return report.default_out_dir(df)
    out = Path(os.environ.get("DROPOUT_BENCH_REPORTS", "reports")) / "_scratch" / report.report_device(df)
    print(f"dropout-bench: --quick without --out writes to {out}/ (gitignored), not reports/<device>/: "
          "a quick run never replaces a full report (give --out to choose)", file=sys.stderr)
    return out


def _from_json(ap, args, command) -> int:
    from . import pytest_json

    try:
        rows = pytest_json.records(pytest_json.load(args.from_json))
    except ValueError as exc:
        ap.error(str(exc))
    if not rows:
        ap.error(f"no dropout benchmarks in {args.from_json} (write them with "
                 "pytest tests/test_bench_smoke.py --benchmark-json=FILE)")
    df = report.frame(rows)
    out = args.out or report.default_out_dir(df)
    paths = report.write_report(df, out, command=command, plots=not args.no_plots)
    print(f"{len(df)} rows from {args.from_json} -> {paths['csv'].parent}/")
    return 0


def _too_big(points, providers) -> str | None:
    """Why some points cannot fit in the memory free now (None when they all fit)."""
    free = env.available_memory(cuda=any(p.device == "cuda" for p in providers.values()))
    over = []
    for pt in points:
        need = prov_mod.footprint(providers[pt.provider], pt)
        over += [f"{pt.id} needs {_size(b)} of {mem} memory" for mem, b in need.items() if b > free.get(mem, b)]
    if not over:
        return None
    free_words = ", ".join(f"{_size(b)} of {mem}" for mem, b in free.items())
    more = f"\n  ... and {len(over) - 5} more" if len(over) > 5 else ""
    return (f"{len(over)} point(s) cannot fit in the memory available ({free_words}):\n  "
            + "\n  ".join(over[:5]) + more + "\nchoose smaller --sizes (or --dtypes float32)")


def _size(nbytes: int) -> str:
    return f"{nbytes / 2**30:,.1f} GiB" if nbytes >= 2**30 else f"{nbytes / 2**20:,.1f} MiB"


def _headline_points(points, providers) -> list:
    """The CPU headline and as-called points of the project's fast backends (not the reference,
    not the peer): timed again at the end of the sweep (``sweep.run``'s ``revisit``)."""
    from .rows import HEADLINE_N, HEADLINE_P

    def headline(pt) -> bool:
        prov = providers[pt.provider]
        if prov.device != "cpu" or prov.kind != "backend" or prov.name == "reference" or pt.dtype != "float32":
            return False
        if pt.operation in grid.AS_CALLED:
            return pt.n == grid.AS_CALLED_N["cpu"]
        return pt.operation in grid.ELEMENTWISE and pt.n == HEADLINE_N["cpu"] and pt.p == HEADLINE_P
    return [pt for pt in points if headline(pt)]


def main(argv=None) -> int:
    ap = _parser()
    args = ap.parse_args(argv)
    argv = sys.argv[1:] if argv is None else list(argv)
    command = shlex.join(["dropout-bench", *map(str, argv)])
    if args.from_json:
        return _from_json(ap, args, command)

    start = time.perf_counter()
    load_before = env.loadavg()
    impls = [spec for group in args.impl or () for spec in group]
    try:
        names = args.backends or _default_backends()
        chosen = prov_mod.resolve(names, peers=not args.no_peers)
        extra = [prov_mod.impl_provider(spec) for spec in dict.fromkeys(impls)]
        if extra and not args.no_peers and not any(p.device == "cpu" for p in chosen):
            chosen += [prov_mod.get(n) for n in prov_mod.peers_for(["cpu"])]  # their copy ceiling
    except ValueError as exc:
        ap.error(str(exc))
    providers = {p.name: p for p in chosen}
    for p in extra:
        providers.setdefault(p.name, p)
    if not args.no_peers and not prov_mod.torch_installed():
        print(f"dropout-bench: no peer: {prov_mod.torch_missing('torch-cpu')}", file=sys.stderr)
    studies = not args.no_studies and not (args.sizes or args.p or args.dtypes or args.operations or args.masks)
    if studies and not args.no_peers and any(p.device == "cpu" for p in providers.values()):
        try:
            if TEXTBOOK not in providers:
                providers[TEXTBOOK] = prov_mod.impl_provider(TEXTBOOK)
                args.study_only = {TEXTBOOK}  # the per-call table's, not the whole grid's
        except ValueError as exc:
            print(f"dropout-bench: no textbook row: {exc}", file=sys.stderr)
    points = grid.points(_grids(args, providers), providers)
    if args.list:
        for pt in points:
            print(pt.id)
        print(f"{len(points)} points")
        return 0
    if not points:
        ap.error("the grid is empty (nothing the chosen providers support)")
    problem = _too_big(points, providers)
    if problem:
        ap.error(problem)
    repeats = args.repeats or (5 if args.quick else 25)
    budget = args.budget if args.budget is not None else (0.05 if args.quick else 0.6)
    passes = args.passes or 1
    print(f"dropout-bench: {len(points)} points x {passes} pass(es), providers {', '.join(providers)}",
          file=sys.stderr)
    records = sweep.run(points, providers, repeats=repeats, warmup=args.warmup, budget_s=budget, passes=passes,
                        wait_idle_s=args.wait_idle, wait_total_s=args.wait_total,
                        retries=2 if args.wait_idle > 0 else 0,
                        progress=not args.no_progress, revisit=_headline_points(points, providers))
    if not records:
        raise SystemExit("dropout-bench: every point failed")
    if studies and "cpu" in providers:
        from . import underload

        print("dropout-bench: under-load rows (a busy process of ours on one core)", file=sys.stderr)
        records += underload.run(providers, underload.QUICK_SIZES if args.quick else underload.SIZES,
                                 repeats=15 if args.quick else 60, budget_s=budget, warmup=args.warmup,
                                 log=lambda m: print(m, file=sys.stderr))
        print("dropout-bench: idle rows, 2 threads against 1", file=sys.stderr)
        records += underload.run_idle(providers, underload.QUICK_IDLE_SIZES if args.quick else underload.IDLE_SIZES,
                                      repeats=5 if args.quick else 25, budget_s=max(budget, 3.0), warmup=args.warmup,
                                      log=lambda m: print(m, file=sys.stderr))
    df = report.frame(records)
    out = args.out or _default_out(args, df)
    paths = report.write_report(df, out, command=command, plots=not args.no_plots)
    print(f"dropout-bench: {len(df)} rows in {sweep.elapsed(start)} (load average {load_before:.2f} before, "
          f"{env.loadavg():.2f} after) -> {paths['csv'].parent}/", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
