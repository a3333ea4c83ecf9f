"""The theory report: per claim a plot, a table (CSV) and a summary (markdown), per implementation.

    python -m reference.conformance.theory_report                         # reference, cpu (+ torch if importable)
    python -m reference.conformance.theory_report --impls torch-dropout --merge   # add PyTorch from its venv
    python -m reference.conformance.theory_report --false-alarm-runs 20   # + 20 fresh-seed runs per impl

Writes ``reports/theory/``: ``checks_<impl>.csv`` (the checks of one run: verdict, p-value,
power, observed / expected), ``sweep_<impl>.csv`` (the Monte Carlo estimates with their 99 %
confidence band against the formula, across p from 0.05 to 0.95 and across T), ``claim<k>.png``
and ``summary.md``. With ``--merge`` the CSVs of other implementations already in the folder
are kept, and the plots and the summary are drawn from all of them.
"""

from __future__ import annotations

import argparse
import math
import re
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from reference.conformance import theory as th
from reference.conformance.stats import budget
from reference.conformance.stats.sampling import Seeds, seeds_from_option

Z = float(stats.norm.isf((1 - th.CONF) / 2))
P_GRID = tuple(round(0.05 * k, 2) for k in range(1, 20))
T_GRID_MC = (1, 2, 4, 8, 16, 32, 64)
T_GRID_ENS = (2, 3, 4, 5, 6, 7, 8, 9, 11, 15)

TITLES = {
    1: "1. Inverted dropout: E[y] = x, Var[y] = x² p/(1-p)",
    2: "2. Jensen: E[φ(y)] - φ(x) (φ = z², softplus), scalar x = 1.5",
    3: "3. MC dropout: Var of the mean of T passes = (1/T)(p/q) Σ(w x)²",
    4: "4. Dropout as adaptive L2: E_mask[loss] - loss = p/(2n(1-p)) Σ w²x²",
    5: "5. Batch-norm shift (classic dropout) and variance mismatch (inverted)",
    6: "6. Active paths through L = 3 layers of 16 units: N_total q^L",
    7: "7. Ensembles: E_ind - E_ens vs (T-1)/(2T) D",
    8: "8. Worked examples, bit for bit",
}


def slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "impl"


# --- sweeps: Monte Carlo estimates with bands against the formula ---------------------------------


def _row(claim, impl, quantity, xname, x, est, se, formula):
    return {"claim": claim, "impl": impl, "quantity": quantity, "x_name": xname, "x": x, "estimate": est,
            "lo": est - Z * se, "hi": est + Z * se, "formula": formula}


def sweep(impl, seeds: Seeds, quick: bool = False) -> list[dict]:
    impl = th.as_impl(impl)
    nm = impl.name
    n = 2**12 if quick else 2**16
    R3 = 2**8 if quick else 2**11
    R4 = 16 if quick else 128
    R6 = 2**9 if quick else 2**12
    R7 = 2**6 if quick else 2**9
    ps = P_GRID[::4] if quick else P_GRID
    rows: list[dict] = []

    def sd(label):
        return th.seed_for(impl, seeds, f"theory-sweep/{label}")

    for p in ps:
        m = th.measure_moments(impl, p, n, *sd(f"1/{p}"))
        rows.append(_row(1, nm, "E[y]/x", "p", p, m["mean"], m["se_mean"], 1.0))
        rows.append(_row(1, nm, "Var[y]/x^2", "p", p, m["var"], m["se_var"], p / (1 - p)))
        m = th.measure_jensen(impl, p, n, *sd(f"2/{p}"))
        rows.append(_row(2, nm, "z^2 bias", "p", p, m["bias_sq"], m["se_sq"], m["formula_sq"]))
        rows.append(_row(2, nm, "softplus gap", "p", p, m["gap_softplus"], m["se_softplus"], m["formula_softplus"]))
        m = th.measure_mc(impl, p, 32, 8, R3, *sd(f"3/{p}"))
        rows.append(_row(3, nm, "Var of MC mean (T=8)", "p", p, m["var"], m["se"], m["formula"]))
        m = th.measure_l2(impl, p, 256, 16, R4, *sd(f"4/{p}"))
        rows.append(_row(4, nm, "penalty", "p", p, m["penalty"], m["se"], m["formula_penalty"]))
        m = th.measure_bn(impl, p, n, *sd(f"5/{p}"))
        rows.append(_row(5, nm, "classic offset", "p", p, m["offset_classic"], m["se"], m["formula_classic"]))
        rows.append(_row(5, nm, "inverted offset", "p", p, m["offset_inverted"], m["se"], 0.0))
        rows.append(_row(5, nm, "inverted test/train variance ratio", "p", p, m["var_ratio_inverted"], 0.0,
                         m["formula_var_ratio"]))
        m = th.measure_paths(impl, p, 3, 16, R6, *sd(f"6/{p}"))
        rows.append(_row(6, nm, "active paths", "p", p, m["paths"], m["se"], m["formula"]))
        m = th.measure_ensemble(impl, p, 5, R7, *sd(f"7/{p}"))
        rows.append(_row(7, nm, "E_ind - E_ens (Brier of votes)", "p", p, m["gap"], m["se_gap"], m["gap_formula"]))
        rows.append(_row(7, nm, "E_ind - E_ens (majority vote, 0/1)", "p", p, m["gap_mv"], m["se_gap_mv"],
                         m["gap_formula"]))
    for T in (T_GRID_MC[:4] if quick else T_GRID_MC):
        m = th.measure_mc(impl, 0.5, 32, T, R3, *sd(f"3T/{T}"))
        rows.append(_row(3, nm, "Var of MC mean (p=0.5)", "T", T, m["var"], m["se"], m["formula"]))
    ev = th.measure_mc_eval(impl, 32)
    if ev is not None:
        rows.append(_row(3, nm, "Var in eval mode", "T", 8, 0.0 if ev else float("nan"), 0.0, 0.0))
    for T in (T_GRID_ENS[:3] if quick else T_GRID_ENS):
        m = th.measure_ensemble(impl, 0.5, T, R7, *sd(f"7T/{T}"))
        rows.append(_row(7, nm, "E_ind - E_ens (Brier of votes), p=0.5", "T", T, m["gap"], m["se_gap"],
                         m["gap_formula"]))
        rows.append(_row(7, nm, "E_ind - E_ens (majority vote, 0/1), p=0.5", "T", T, m["gap_mv"], m["se_gap_mv"],
                         m["gap_formula"]))
    # claim 8: the arange(16) example at p = 0.5 and [5, 7, 9] at p = 0.1 (one seed each)
    x = np.arange(16, dtype=np.float32).reshape(2, 8)
    y = th.forward_values(impl, x, 0.5, *sd("8/arange"))
    for i, (a, b) in enumerate(zip(x.ravel(), y.ravel())):
        rows.append(_row(8, nm, "arange(16), p=0.5", "i", i, float(b), 0.0, float(2 * a) if b else 0.0))
    x3 = np.array([5, 7, 9], np.float32)
    for j in range(4):
        y3 = th.forward_values(impl, x3, 0.1, *sd(f"8/579/{j}"))
        for a, b in zip(x3, y3):
            rows.append(_row(8, nm, f"[5,7,9], p=0.1, seed {j}", "x", float(a), float(b), 0.0,
                             float(a * np.float32(1 / 0.9)) if b else 0.0))
    return rows


# --- plots ---------------------------------------------------------------------------------------


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


_LOG = {"Var[y]/x^2", "z^2 bias", "Var of MC mean (T=8)", "penalty", "active paths", "Var of MC mean (p=0.5)"}
_MARKERS = "osD^v<>"


def plot_claim(df: pd.DataFrame, claim: int, path: Path) -> Path | None:
    d = df[df.claim == claim]
    if d.empty:
        return None
    plt = _plt()
    quantities = list(dict.fromkeys(d.quantity))
    if claim == 8:
        quantities = quantities[:2]
    ncol = min(len(quantities), 3)
    nrow = math.ceil(len(quantities) / ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(5.2 * ncol, 3.8 * nrow), squeeze=False)
    impls = list(dict.fromkeys(d.impl))
    for ax, qn in zip(axes.ravel(), quantities):
        dq = d[d.quantity == qn]
        first = dq[dq.impl == impls[0]].sort_values("x")
        if claim == 8:
            ax.plot(first.x, first.formula, "k_", ms=14, label="formula (0 where dropped)")
        else:
            ax.plot(first.x, first.formula, "k-", lw=1.5, label="formula", zorder=1)
        for k, im in enumerate(impls):
            di = dq[dq.impl == im].sort_values("x")
            off = (k - (len(impls) - 1) / 2) * (0.006 if first.x_name.iloc[0] == "p" else 0.0)
            xs = di.x + off
            ax.errorbar(xs, di.estimate, yerr=[di.estimate - di.lo, di.hi - di.estimate], fmt=_MARKERS[k % 7],
                        ms=4, capsize=2, lw=1, label=f"{im} (MC, {th.CONF:.0%} band)", zorder=2)
        if qn in _LOG:
            ax.set_yscale("log")
        if qn.startswith("Var of MC mean (p"):
            ax.set_xscale("log", base=2)
        ax.set_xlabel(first.x_name.iloc[0])
        ax.set_title(qn, fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    for ax in axes.ravel()[len(quantities):]:
        ax.axis("off")
    fig.suptitle(TITLES[claim], fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# --- tables and summary ------------------------------------------------------------------------------


def checks_frame(tr: th.TheoryRun) -> pd.DataFrame:
    rows = []
    for r in tr.results:
        rows.append({"impl": tr.impl.name, "claim": r.claim, "check": r.name, "status": r.status,
                     "p_value": r.p_value, "alpha": r.alpha, "n": r.n, "detectable_99pct_power": r.effect,
                     "observed": r.measured.get("observed", ""), "expected": r.measured.get("expected", ""),
                     "difference": r.measured.get("difference", ""), "test": r.measured.get("test", ""),
                     "detail": r.detail if r.status != "pass" else "", "seconds": round(r.seconds, 3),
                     "master_seed": tr.seeds.master, "mode": "quick" if tr.quick else "full",
                     "hypotheses": tr.hypotheses})
    return pd.DataFrame(rows)


def write_run(tr: th.TheoryRun, out: Path) -> Path:
    """One run as ``theory.md`` + ``theory.csv`` (``dropout-check IMPL --theory --out DIR``)."""
    out.mkdir(parents=True, exist_ok=True)
    df = checks_frame(tr)
    df.to_csv(out / "theory.csv", index=False)
    lines = [f"# Theory claims on `{tr.impl.name}`: {tr.verdict.upper()}", "",
             f"ALPHA = {tr.alpha:.3g} per test ({budget.FAMILY_ALPHA:g} over {tr.hypotheses} hypotheses); "
             f"master seed {tr.seeds.master} ({tr.seeds.mode}); {tr.seconds:.1f} s. See docs/THEORY.md.", "",
             *_check_table(df)]
    path = out / "theory.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def _pv(x) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "exact"
    return "<1e-300" if x == 0 else f"{x:.3g}"


def _check_table(df: pd.DataFrame) -> list[str]:
    out = ["| check | verdict | p-value | n | detectable (99 % power) | observed | expected | difference |",
           "|---|---|---|---|---|---|---|---|"]
    for r in df.itertuples():
        verdict = "pass" if r.status == "pass" else f"**{r.status.upper()}**"
        cells = [str(c).replace("|", "/") for c in (r.observed, r.expected, r.difference)]
        out.append(f"| `{r.check}` | {verdict} | {_pv(r.p_value)} | {r.n} | {r.detectable_99pct_power} | "
                   + " | ".join(cells) + " |")
    return out


def _verdict_matrix(checks: pd.DataFrame) -> list[str]:
    impls = list(dict.fromkeys(checks.impl))
    out = ["| check | " + " | ".join(f"`{i}`" for i in impls) + " |", "|---|" + "---|" * len(impls)]
    for name in dict.fromkeys(checks.check):
        cells = []
        for i in impls:
            r = checks[(checks.impl == i) & (checks.check == name)]
            if r.empty:
                cells.append("-")
                continue
            r0 = r.iloc[0]
            v = "pass" if r0.status == "pass" else f"**{r0.status.upper()}**"
            cells.append(f"{v} (p = {_pv(r0.p_value)})" if isinstance(r0.p_value, float) and
                         not math.isnan(r0.p_value) else v)
        out.append(f"| `{name}` | " + " | ".join(cells) + " |")
    return out


def summary(out: Path, checks: pd.DataFrame, sweeps: pd.DataFrame, plots: dict, fa: pd.DataFrame | None) -> str:
    lines = ["# Theory claims measured on dropout implementations", "",
             "Generated by `python -m reference.conformance.theory_report` (see docs/THEORY.md for the claims, "
             "their sources, the tests and the findings). Each check: a Monte Carlo measurement on the "
             "implementation's real outputs, a p-value (the test is named in `checks_<impl>.csv`), the smallest "
             f"deviation detected with 99 % power, at ALPHA = FAMILY_ALPHA ({budget.FAMILY_ALPHA:g}) over the run's "
             "hypotheses. Plots: the Monte Carlo estimate with its 99 % band against the formula.", "",
             "## Verdicts", "", *_verdict_matrix(checks), ""]
    if fa is not None and not fa.empty:
        g = fa.groupby("impl").agg(runs=("run", "nunique"), false_alarms=("failed", "sum"),
                                   hypotheses=("hypotheses", "first"), alpha=("alpha", "first"),
                                   seconds=("seconds", "mean"))
        lines += ["## False alarms on fresh seeds", "",
                  "Fresh random master seeds (`--stat-seed random`), full sizes; a false alarm is a run with any "
                  "failed check (the budget allows a probability of 1e-4 per run).", "",
                  "| impl | runs | runs with a failed check | hypotheses | ALPHA | mean seconds per run |",
                  "|---|---|---|---|---|---|"]
        for im, r in g.iterrows():
            lines.append(f"| `{im}` | {int(r.runs)} | {int(r.false_alarms)} | {int(r.hypotheses)} | {r.alpha:.3g} | "
                         f"{r.seconds:.1f} |")
        lines.append("")
    for k in range(1, 9):
        lines += [f"## {TITLES[k]}", ""]
        if k in plots:
            lines += [f"![claim {k}]({plots[k]})", ""]
        sub = checks[checks.claim == k]
        if not sub.empty:
            lines += _check_table(sub) + [""]
        if k == 7 and not sweeps.empty:
            d = sweeps[(sweeps.claim == 7) & (sweeps.x_name == "T")]
            mv = d[d.quantity.str.contains("majority")]
            if not mv.empty:
                lines += ["Quoted form with the 0/1 error of a plurality vote (ties to the lowest class) at p = 0.5: "
                          "measured E_ind - E_mv against (T-1)/(2T) E[D]:", "",
                          "| impl | T | E_ind - E_mv (measured) | 99 % band | (T-1)/(2T) E[D] | relative |",
                          "|---|---|---|---|---|---|"]
                for r in mv.itertuples():
                    lines.append(f"| `{r.impl}` | {int(r.x)} | {r.estimate:.4g} | [{r.lo:.4g}, {r.hi:.4g}] | "
                                 f"{r.formula:.4g} | {100 * (r.estimate - r.formula) / r.formula:+.1f}% |")
                lines.append("")
    return "\n".join(lines)


def render(out: Path) -> Path:
    checks = pd.concat([pd.read_csv(f) for f in sorted(out.glob("checks_*.csv"))], ignore_index=True)
    sweeps = pd.concat([pd.read_csv(f) for f in sorted(out.glob("sweep_*.csv"))], ignore_index=True)
    fa_path = out / "false_alarms.csv"
    fa = pd.read_csv(fa_path) if fa_path.exists() else None
    plots = {}
    for k in range(1, 9):
        p = plot_claim(sweeps, k, out / f"claim{k}.png")
        if p is not None:
            plots[k] = p.name
    path = out / "summary.md"
    path.write_text(summary(out, checks, sweeps, plots, fa) + "\n")
    return path


def false_alarm_runs(impl, runs: int, quick: bool = False) -> list[dict]:
    rows = []
    for j in range(runs):
        tr = th.run(impl, seeds_from_option("random"), quick)
        failed = [r.name for r in tr.results if r.passed is False]
        rows.append({"impl": tr.impl.name, "run": j, "master_seed": tr.seeds.master, "failed": int(bool(failed)),
                     "failed_checks": ";".join(failed), "hypotheses": tr.hypotheses, "alpha": tr.alpha,
                     "min_p": min(r.p_value for r in tr.results if r.p_value is not None),
                     "seconds": round(tr.seconds, 2), "mode": "quick" if quick else "full"})
    return rows


def _default_impls() -> list[str]:
    names = ["reference", "cpu"]
    try:
        import torch  # noqa: F401

        names.append("torch-dropout")
    except ImportError:
        pass
    return names


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m reference.conformance.theory_report", description=__doc__)
    ap.add_argument("--impls",
                    help="comma-separated IMPL strings (default: reference, cpu, torch-dropout if importable)")
    ap.add_argument("--out", default="reports/theory")
    ap.add_argument("--quick", action="store_true", help="small sizes (tests)")
    ap.add_argument("--stat-seed", default="fixed")
    ap.add_argument("--merge", action="store_true", help="keep other implementations' CSVs in --out")
    ap.add_argument("--false-alarm-runs", type=int, default=0, metavar="K",
                    help="also run the checks K times on fresh random seeds per implementation")
    a = ap.parse_args(argv)
    from reference.conformance import loader

    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    names = a.impls.split(",") if a.impls else _default_impls()
    if not a.merge:
        for f in [*out.glob("checks_*.csv"), *out.glob("sweep_*.csv"), out / "false_alarms.csv"]:
            f.unlink(missing_ok=True)
    seeds = seeds_from_option(a.stat_seed)
    verdict = 0
    fa_rows: list[dict] = []
    for nm in names:
        impl = th.as_impl(th.PAIRS_SHARE_DECISION) if nm == "mutant:pairs_share_decision" else loader.load(nm)
        t0 = time.perf_counter()
        tr = th.run(impl, seeds, a.quick)
        checks_frame(tr).to_csv(out / f"checks_{slug(impl.name)}.csv", index=False)
        pd.DataFrame(sweep(impl, seeds, a.quick)).to_csv(out / f"sweep_{slug(impl.name)}.csv", index=False)
        print("\n".join(th.summary_lines(tr)))
        print(f"  (checks + sweep: {time.perf_counter() - t0:.1f} s)")
        verdict |= tr.verdict == "fail"
        if a.false_alarm_runs:
            rows = false_alarm_runs(impl, a.false_alarm_runs, a.quick)
            print(f"  {a.false_alarm_runs} fresh-seed runs: {sum(r['failed'] for r in rows)} with a failed check")
            fa_rows += rows
    if fa_rows:
        fa_path = out / "false_alarms.csv"
        old = pd.read_csv(fa_path) if fa_path.exists() else pd.DataFrame()
        new = pd.DataFrame(fa_rows)
        if not old.empty:
            old = old[~old.impl.isin(new.impl.unique())]
        pd.concat([old, new], ignore_index=True).to_csv(fa_path, index=False)
    print(f"summary: {render(out)}")
    return int(verdict)


def cli_main(impl, seeds: Seeds, quick: bool = False, out: str | None = None, json_path: str | None = None,
             names=None) -> int:
    """``dropout-check IMPL --theory``: print, write ``<out>/theory.md`` and ``theory.csv``; exit 0 or 1."""
    import json

    tr = th.run(impl, seeds, quick, names=names)
    print("\n".join(th.summary_lines(tr)))
    if out:
        path = write_run(tr, Path(out))
        print(f"report: {path}")
    if json_path:
        Path(json_path).write_text(json.dumps(tr.to_json(), indent=1, default=str))
    return 1 if tr.verdict == "fail" else 0


if __name__ == "__main__":
    import sys

    sys.exit(main())
