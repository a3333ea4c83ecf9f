"""The report of the training experiment: the long CSV, the plots and summary.md (statistics
over seeds: paired comparisons, TOST equivalence, the generalization gap, timing shares)."""

from __future__ import annotations

import math
import os

import numpy as np

#: The equivalence margin on final test accuracy (percentage points), justified in summary.md.
MARGIN_PP = 1.0


def final_rows(df):
    last = df[df.epoch == df.epoch.max()]
    return last.set_index(["implementation", "seed"])


def paired(df, a: str, b: str) -> np.ndarray:
    """Final test accuracy of ``a`` minus ``b`` per seed (percentage points), common seeds only."""
    f = final_rows(df).test_acc
    sa, sb = f.xs(a, level=0), f.xs(b, level=0)
    common = sa.index.intersection(sb.index)
    return 100.0 * (sa[common].to_numpy() - sb[common].to_numpy())


def tost(d: np.ndarray, margin: float) -> dict:
    """Paired TOST (two one-sided t-tests) of ``|mean(d)| < margin`` and the 90 % interval."""
    from scipy import stats

    n = len(d)
    mean = float(np.mean(d)) if n else math.nan
    if n < 2:
        return {"n": n, "mean": mean, "sd": math.nan, "lo": math.nan, "hi": math.nan, "p": math.nan,
                "equivalent": False}
    sd = float(np.std(d, ddof=1))
    se = sd / math.sqrt(n) if sd > 0 else 1e-12
    t_lo, t_hi = (mean + margin) / se, (mean - margin) / se
    p = max(float(stats.t.sf(t_lo, n - 1)), float(stats.t.cdf(t_hi, n - 1)))
    q = float(stats.t.ppf(0.95, n - 1))
    return {"n": n, "mean": mean, "sd": sd, "lo": mean - q * se, "hi": mean + q * se, "p": p,
            "equivalent": p < 0.05}


def gap_table(df):
    f = final_rows(df).reset_index()
    f["gap"] = 100.0 * (f.train_acc - f.test_acc)
    return f


def plots(df, timing, out: str) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    files = []
    labels = list(dict.fromkeys(df.implementation))
    fig, axes = plt.subplots(1, 3, figsize=(17, 5))
    for lab in labels:
        g = df[df.implementation == lab].groupby("epoch")
        for ax, col in zip(axes, ("train_loss", "train_acc", "test_acc")):
            m, lo, hi = g[col].mean(), g[col].min(), g[col].max()
            (line,) = ax.plot(m.index, m.values, label=lab, lw=1.4)
            ax.fill_between(m.index, lo.values, hi.values, color=line.get_color(), alpha=0.15)
    for ax, title in zip(axes, ("training loss (dropout on, noisy labels)", "training accuracy (eval mode)",
                                "test accuracy")):
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    axes[2].legend(fontsize=7, loc="lower right")
    fig.suptitle("mean over seeds; band: min to max over seeds")
    fig.tight_layout()
    files.append("curves.png")
    fig.savefig(os.path.join(out, files[-1]), dpi=110)
    plt.close(fig)

    gt = gap_table(df)
    stats_ = gt.groupby("implementation", sort=False).agg(gap=("gap", "mean"), sd=("gap", "std"),
                                                          test=("test_acc", "mean"))
    stats_ = stats_.loc[[lab for lab in labels if lab in stats_.index]]
    fig, ax = plt.subplots(figsize=(9, 4.5))
    ax.barh(stats_.index, stats_.gap, xerr=stats_.sd.fillna(0), color="tab:orange", alpha=0.8)
    ax.set_xlabel("train accuracy - test accuracy at the last epoch (percentage points; mean, sd over seeds)")
    ax.invert_yaxis()
    ax.grid(axis="x", alpha=0.3)
    ax.set_title("generalization gap without and with dropout")
    fig.tight_layout()
    files.append("gap.png")
    fig.savefig(os.path.join(out, files[-1]), dpi=110)
    plt.close(fig)

    if timing is not None and len(timing):
        fig, ax = plt.subplots(figsize=(9, 4.5))
        ax.barh(timing.index, timing.rest_ms, label="rest of the step", color="tab:blue")
        ax.barh(timing.index, timing.dropout_ms, left=timing.rest_ms, label="dropout (forward + backward)",
                color="tab:red")
        ax.set_xlabel("median time per training step (ms), CPU")
        ax.invert_yaxis()
        ax.legend(fontsize=8)
        ax.grid(axis="x", alpha=0.3)
        fig.tight_layout()
        files.append("timing.png")
        fig.savefig(os.path.join(out, files[-1]), dpi=110)
        plt.close(fig)
    return files


def timing_table(steps):
    """Per variant: median step and dropout time (ms) over the measured steps, and the share."""
    import pandas as pd

    g = steps.groupby("implementation", sort=False)
    t = pd.DataFrame({"step_ms": 1e3 * g.step_s.median(), "dropout_ms": 1e3 * g.dropout_s.median(),
                      "share": g.dropout_s.sum() / g.step_s.sum(), "steps": g.step_s.size()})
    t["rest_ms"] = (t.step_ms - t.dropout_ms).clip(lower=0)
    return t


def _pct(x: float) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.2f}"


def summary(df, timing, meta: dict, checks: list, threads: dict | None, out: str, files: list[str]) -> str:
    gt = gap_table(df)
    labels = list(dict.fromkeys(df.implementation))
    lines = ["# Dropout inside a trained network: the textbook's MLP on our kernels", "",
             f"Generated by `{meta['command']}` ({meta['seconds']:.0f} s; {meta['machine']}).", "",
             "## Setup", "",
             f"- **Data**: {meta['data']}",
             f"- **Network**: 784-256-256-10 MLP, ReLU, dropout p = {meta['p'][0]} after the first hidden layer and "
             f"{meta['p'][1]} after the second (d2l 4.6), softmax cross-entropy, minibatch SGD (lr {meta['lr']}, "
             f"batch {meta['batch']}), {meta['epochs']} epochs, initial weights as PyTorch's nn.Linear, the same for "
             "every variant of a seed, and the same minibatch order.",
             f"- **Seeds**: {meta['seeds']} (each seed: initial weights, batch order and the dropout stream).",
             f"- **Deviation from the textbook**: {meta['deviation']}",
             "- Train accuracy is measured in eval mode on the whole training set against its (noisy) labels; "
             "test accuracy on the clean test set. Gap = train - test accuracy.", "",
             "## Final accuracies (last epoch; mean, sd and min to max over seeds)", "",
             "| implementation | role | test acc % | sd | min..max | train acc % | gap (pp) | gap sd |",
             "|---|---|---|---|---|---|---|---|"]
    for lab in labels:
        r = gt[gt.implementation == lab]
        lines.append(f"| `{lab}` | {r.role.iloc[0]} | {100 * r.test_acc.mean():.2f} | {100 * r.test_acc.std():.2f} | "
                     f"{100 * r.test_acc.min():.1f}..{100 * r.test_acc.max():.1f} | {100 * r.train_acc.mean():.2f} | "
                     f"{r.gap.mean():.2f} | {r.gap.std():.2f} |")
    lines += ["", "![curves](curves.png)", "", "![gap](gap.png)", ""]

    peer = meta.get("peer")
    lines += ["## Does dropout on our kernels regularize as PyTorch's does?", ""]
    if peer is None:
        lines += ["PyTorch is not installed in this run: no nn.Dropout rows (run with torch installed).", ""]
    else:
        dnone = paired(df, peer, "none") if "none" in labels else np.array([])
        eff = float(np.mean(dnone)) if len(dnone) else math.nan
        lines += [f"Paired over seeds: final test accuracy of each implementation minus `{peer}` (percentage "
                  f"points). Equivalence: TOST at 5 % with margin +-{MARGIN_PP:g} pp. Why this margin: "
                  f"nn.Dropout's own benefit over no dropout is {_pct(eff)} pp here, and a test set of "
                  f"{meta['n_test']} samples has a binomial standard error of about "
                  f"{100 * math.sqrt(0.95 * 0.05 / meta['n_test']):.2f} pp per run at 95 % accuracy; a difference "
                  f"below {MARGIN_PP:g} pp is smaller than half of what dropout does and of the order of a "
                  "run's own measurement noise, so it does not change the conclusion a user draws. "
                  "Where TOST does not conclude, the 90 % interval is the answer: the data cannot "
                  "separate the implementations beyond it.", "",
                  "| implementation | n | mean diff (pp) | sd | 90 % CI | TOST p | equivalent within margin |",
                  "|---|---|---|---|---|---|---|"]
        for lab in labels:
            if lab == peer:
                continue
            t = tost(paired(df, lab, peer), MARGIN_PP)
            lines.append(f"| `{lab}` | {t['n']} | {_pct(t['mean'])} | {_pct(t['sd'])} | "
                         f"[{_pct(t['lo'])}, {_pct(t['hi'])}] | {t['p']:.3g} | "
                         f"{'**yes**' if t['equivalent'] else 'no'} |")
        lines.append("")

    if "none" in labels:
        lines += ["## How much of the overfitting gap dropout closes (same seeds)", "",
                  "Gap = train accuracy - test accuracy at the last epoch; closed = 1 - gap(with) / gap(none), "
                  "from the means; improvement = test accuracy with minus without dropout, paired by seed.", "",
                  "| implementation | gap none (pp) | gap with (pp) | closed | test improvement (pp, mean [90 % CI]) |",
                  "|---|---|---|---|---|"]
        g0 = gt[gt.implementation == "none"].gap.mean()
        for lab in labels:
            if lab == "none":
                continue
            g1 = gt[gt.implementation == lab].gap.mean()
            t = tost(paired(df, lab, "none"), MARGIN_PP)
            closed = 1 - g1 / g0 if g0 else math.nan
            lines.append(f"| `{lab}` | {g0:.2f} | {g1:.2f} | {100 * closed:.0f} % | {_pct(t['mean'])} "
                         f"[{_pct(t['lo'])}, {_pct(t['hi'])}] |")
        lines.append("")

    if timing is not None and len(timing):
        lines += ["## Time per training step and the share spent in dropout (CPU, profiled)", "",
                  "Measured inside the training loop: the step (forward, backward, SGD update) with "
                  "`time.perf_counter`; the dropout calls with perf_counter around them (NumPy layers: "
                  "forward and backward, mask handling included) or between module hooks (PyTorch: "
                  "forward pre-hook to forward hook, full-backward pre-hook to backward hook). "
                  f"Medians over all steps of all seeds after the first {meta['warmup']} steps of each run "
                  "(Numba compilation excluded). A forward-only implementation (the textbook's `dropout_layer`, "
                  "an `f(x, p, seed)` IMPL) is called twice per forward, the second time on ones to learn its "
                  "mask for backward: that adapter cost is counted as its dropout time, so its share is an upper "
                  "bound.", "",
                  "| implementation | step (ms) | dropout (ms) | dropout share | steps |", "|---|---|---|---|---|"]
        for lab, r in timing.iterrows():
            lines.append(f"| `{lab}` | {r.step_ms:.2f} | {r.dropout_ms:.3f} | {100 * r.share:.1f} % | {int(r.steps)} |")
        lines += ["", "![timing](timing.png)", ""]
    if threads:
        lines += ["### Our CPU kernel beside PyTorch's thread pool", "",
                  f"`kernels.cpu.dropout_forward` on a {threads['shape']} float32 activation, called right after "
                  "a torch matmul (as in the bridge), median of "
                  f"{threads['reps']} calls: " + "; ".join(f"torch threads = {k}: {v:.1f} us"
                                                           for k, v in threads["us"].items()) + ". "
                  "The bridge calls our kernels between torch's ops, never inside one of its parallel regions; "
                  "concurrent Python threads are serialized by kernels/threads.py.", ""]

    if checks:
        lines += ["## A broken kernel in training, and the checker", "",
                  "The mutants train beside the correct implementations above (rows with role `mutant`). "
                  "`dropout-check` (reference.conformance.runner, quick mode) on each, before any training:", "",
                  "| IMPL | verdict | failed checks | checker time (s) |", "|---|---|---|---|"]
        for c in checks:
            failed = ", ".join(f"`{n}`" for n in c["failed"][:6]) + (" ..." if len(c["failed"]) > 6 else "")
            lines.append(f"| `{c['impl']}` | **{c['verdict'].upper()}** | {failed} | {c['seconds']:.1f} |")
        lines += ["", "The committed full report of `quant8`: reports/conformance/quant8/report.md (FAIL, 14 checks).",
                  ""]
    lines += ["## Files", "", "- `training.csv`: implementation, seed, epoch, train loss, train and test accuracy, "
              "seconds (training time so far)", "- `steps.csv`: per-step times (step, dropout)"] + \
             [f"- `{f}`" for f in files] + [""]
    text = "\n".join(lines)
    with open(os.path.join(out, "summary.md"), "w") as f:
        f.write(text)
    return text
