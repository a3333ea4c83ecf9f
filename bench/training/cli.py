"""``dropout-train`` (``python -m bench.training``): the textbook's dropout experiment on our
kernels, PyTorch's nn.Dropout, the textbook's from-scratch layer, broken kernels and any IMPL,
over several seeds; writes reports/training/ (training.csv, steps.csv, plots, summary.md)."""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import sys
import time

from bench.training.data import load_idx_dir, synthetic
from bench.training.experiment import Config, Variant, train

MUTANTS = ("reference.conformance.mutants:no_scale", "quant8")
WARMUP = 8  # steps of each run left out of the timing (Numba compiles on the first calls)


def _has_torch() -> bool:
    return importlib.util.find_spec("torch") is not None


def variants(args) -> list[Variant]:
    import kernels

    out = [Variant("none", "none", role="baseline")]
    torch = _has_torch() and not args.no_torch
    if torch:
        out.append(Variant("torch:nn.Dropout", "torch-nn", role="peer"))
        out.append(Variant("torch:KernelDropout(cpu)", "torch-bridge", "cpu", role="ours"))
    for name in ("reference", "cpu"):
        if name in kernels.BACKENDS and not (args.quick and name == "cpu" and torch):
            out.append(Variant(f"numpy:{name}", "numpy", name, role="ours"))
    out.append(Variant("numpy:textbook-numpy", "numpy", "textbook-numpy", role="textbook"))
    for m in (() if args.no_mutants else MUTANTS[:1] if args.quick else MUTANTS):
        out.append(Variant(f"numpy:{m}", "numpy", m, role="mutant"))
    for spec in args.impl:
        out.append(Variant(f"numpy:{spec}", "numpy", spec, role="user"))
    return out


def run_checks(specs) -> list[dict]:
    from reference.conformance.loader import load
    from reference.conformance.runner import run

    out = []
    for spec in specs:
        t0 = time.perf_counter()
        r = run(load(spec), quick=True)
        out.append({"impl": spec, "verdict": r.verdict, "seconds": time.perf_counter() - t0,
                    "failed": [x.name for x in r.results if x.passed is False]})
    return out


def thread_probe(reps: int = 200) -> dict | None:
    """Our CPU kernel's time right after a torch matmul, with torch's pool at 1 and at its default."""
    if not _has_torch():
        return None
    import numpy as np
    import torch

    from kernels import cpu

    a = torch.randn(256, 784)
    w = torch.randn(784, 256)
    x = np.random.default_rng(0).random((256, 256), dtype=np.float32)
    out = np.empty_like(x)
    default = torch.get_num_threads()
    res = {}
    for n in sorted({1, default}, reverse=True):
        torch.set_num_threads(n)
        ts = []
        for i in range(reps + 5):
            torch.mm(a, w)
            t0 = time.perf_counter()
            cpu.dropout_forward(x, 0.5, seed=1, offset=i * x.size, mask_format="bits", out=out)
            ts.append(time.perf_counter() - t0)
        res[n] = 1e6 * float(np.median(ts[5:]))
    torch.set_num_threads(default)
    return {"shape": "256x256", "reps": reps, "us": res}


def parse(argv):
    ap = argparse.ArgumentParser(prog="dropout-train", description=__doc__)
    ap.add_argument("--data", help="a directory with the Fashion-MNIST (or MNIST) IDX files, gz or raw; "
                    "default: the built-in synthetic set")
    ap.add_argument("--seeds", type=int, default=5, help="seeds per implementation (default 5)")
    ap.add_argument("--epochs", type=int, help="default: 10 with --data (the textbook's), 60 on the synthetic set")
    ap.add_argument("--lr", type=float, help="default: 0.5 with --data (the textbook's), 0.2 on the synthetic set")
    ap.add_argument("--n-train", type=int, help="training samples (default: all of --data; 1024 synthetic)")
    ap.add_argument("--impl", action="append", default=[], help="also train with this IMPL string (repeatable)")
    ap.add_argument("--out", default="reports/training", help="output directory (default reports/training)")
    ap.add_argument("--quick", action="store_true", help="a smoke run: 2 seeds, few epochs, small data (~30 s)")
    ap.add_argument("--no-torch", action="store_true", help="leave out the PyTorch rows even if torch is installed")
    ap.add_argument("--no-mutants", action="store_true", help="leave out the broken implementations")
    ap.add_argument("--no-check", action="store_true", help="do not run dropout-check on the mutants")
    return ap.parse_args(argv)


def main(argv=None) -> int:
    import pandas as pd

    from bench.training import report

    args = parse(argv)
    t_start = time.perf_counter()
    if args.data:
        data = load_idx_dir(args.data, n_train=args.n_train)
        cfg = Config(epochs=args.epochs or 10, lr=args.lr or 0.5, eval_every=1)
        deviation = "none: the textbook's hyperparameters on the IDX data given."
    else:
        n_train = args.n_train or (512 if args.quick else 1024)
        data = synthetic(n_train=n_train, n_test=512 if args.quick else 2048)
        cfg = Config(epochs=args.epochs or (6 if args.quick else 60), lr=args.lr or 0.2,
                     eval_every=3 if args.quick else 5)
        deviation = (f"Fashion-MNIST cannot be downloaded here, so the default data are synthetic, with few "
                     f"training samples ({n_train}: {n_train // cfg.batch} SGD steps an epoch, against the "
                     f"textbook's 235); {cfg.epochs} epochs (instead of 10) give the network the steps to overfit, "
                     f"and lr {cfg.lr} (instead of 0.5, which oscillates on these inputs). "
                     "`--data DIR` runs the textbook's settings on the real IDX files.")
    seeds = list(range(2 if args.quick else args.seeds))
    vs = variants(args)
    os.makedirs(args.out, exist_ok=True)
    checks = []
    if not args.no_check and not args.no_mutants:
        checks = run_checks([v.impl for v in vs if v.role == "mutant"])
        for c in checks:
            print(f"dropout-check {c['impl']}: {c['verdict'].upper()} ({len(c['failed'])} checks failed, "
                  f"{c['seconds']:.1f} s)", flush=True)
    rows, steps = [], []
    for seed in seeds:
        for v in vs:
            t0 = time.perf_counter()
            r = train(v, data, seed, cfg)
            rows += r.rows
            steps += [{"implementation": v.label, "seed": seed, "step": i, "step_s": s, "dropout_s": d}
                      for i, (s, d) in enumerate(zip(r.step_seconds, r.dropout_seconds))]
            last = r.rows[-1]
            print(f"seed {seed} {v.label:<45} train {last['train_acc']:.3f} test {last['test_acc']:.3f} "
                  f"({time.perf_counter() - t0:.1f} s)", flush=True)
    df = pd.DataFrame(rows)
    st = pd.DataFrame(steps)
    df.to_csv(os.path.join(args.out, "training.csv"), index=False, float_format="%.6g")
    st.to_csv(os.path.join(args.out, "steps.csv"), index=False, float_format="%.6g")
    timing = report.timing_table(st[st.step >= WARMUP])
    threads = thread_probe() if not args.no_torch else None
    files = report.plots(df, timing, args.out)
    labels = set(df.implementation)
    meta = {"command": "python -m bench.training " + " ".join(argv if argv is not None else sys.argv[1:]),
            "seconds": time.perf_counter() - t_start,
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
            "data": data.description, "p": cfg.p, "lr": cfg.lr, "batch": cfg.batch, "epochs": cfg.epochs,
            "seeds": ", ".join(map(str, seeds)), "deviation": deviation, "n_test": len(data.x_test),
            "warmup": WARMUP, "peer": "torch:nn.Dropout" if "torch:nn.Dropout" in labels else None}
    report.summary(df, timing, meta, checks, threads, args.out, files)
    print(f"wrote {args.out}/summary.md ({time.perf_counter() - t_start:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
