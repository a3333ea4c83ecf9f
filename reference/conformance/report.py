"""A run as files: ``report.md`` (a verdict per check, p-values, detectable effects,
versions, seeds), ``checks.csv`` (one row per check) and plots where a picture reads faster:
the observed keep rate with its confidence band against p, and a QQ plot of the p-values."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from reference.conformance.stats import budget
from reference.conformance.stats.sampling import keep_prob

_MARK = {"pass": "pass", "fail": "**FAIL**", "error": "**ERROR**", "not supported": "not supported",
         "note": "note"}


def _pv(x):
    if x is None:
        return ""
    return "<1e-300" if x == 0 else f"{x:.3g}"


def failure_line(r) -> str:
    """One failing check in words: p-value, observed, expected, effect size, likely cause, detail."""
    parts = [f"{r.name}:"]
    if r.p_value is not None:
        parts.append(f"p = {_pv(r.p_value)} (ALPHA {r.alpha:.3g})" if r.alpha else f"p = {_pv(r.p_value)}")
    if r.observed:
        parts.append(f"observed {r.observed}, expected {r.expected}; effect {r.effect_size}")
    if r.cause and r.kind == "statistical":
        parts.append(f"likely cause: {r.cause}")
    if r.kind != "statistical" or not r.observed:
        parts.append(r.detail)
    return " ".join(p for p in parts if p).replace(": ;", ":")


def write(run, out: str | Path) -> list[Path]:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    files = [out / "report.md", out / "checks.csv"]
    run.to_frame().drop(columns=["measured"]).to_csv(files[1], index=False)
    plots = [p for p in (keep_rate_plot(run, out / "keep_rate.png"), qq_plot(run, out / "pvalues_qq.png")) if p]
    files[0].write_text(markdown(run, [p.name for p in plots]))
    return files + plots


_LEVEL_MEANS = {"contract": "bit for bit against docs/RNG_STREAM.md, plus everything below",
               "statistical": "any RNG: semantic checks and the statistical battery"}


def markdown(run, plots=()) -> str:
    j = run.to_json()
    failed = [r for r in run.results if r.passed is False]
    caps = ", ".join(f"{k}={v}" for k, v in run.impl.capabilities.as_dict().items())
    versions = ", ".join(f"{k} {v}" for k, v in run.environment.items())
    lines = [f"# dropout-check: `{j['impl']}`", ""]
    if run.impl.description:
        lines += [run.impl.description, ""]
    lines += [
        f"**Verdict: {'PASS' if run.verdict == 'pass' else 'FAIL'}** at level `{run.level}`"
        + (f" ({len(failed)} check(s) failed: " + ", ".join(f"`{r.name}`" for r in failed) + ")" if failed else ""),
        "",
        "| | |", "|---|---|",
        f"| level | `{run.level}` ({_LEVEL_MEANS[run.level]}) |",
        f"| sizes | {'small (simulator, interpreter): 4096 per call' if run.impl.simulated else run.mode} |",
        f"| master seed | {run.seeds.master} ({run.seeds.mode}); replay: `--stat-seed {run.seeds.master}` |",
        f"| false-alarm budget | {budget.FAMILY_ALPHA:g} per run over {run.hypotheses} distinct hypotheses: "
        f"ALPHA = {run.alpha:.3g} per test |",
        f"| capabilities | {caps} |",
        *([f"| calls | stateful: f(x, p) draws from a generator it holds; "
           f"{'reseed(seed) before each seeded check' if run.impl.hooks.reseed else 'no reseed: seeds are ignored'} |"]
          if run.impl.hooks is not None else []),
        *([f"| seeds | {run.impl.seed_bits}-bit: each check's seed hashed to {run.impl.seed_bits} bits "
           "(splitmix64) |"] if run.impl.seed_bits < 64 else []),
        f"| versions | {versions} |",
        f"| time | {run.seconds:.1f} s |",
        "",
        "A statistical check fails when its p-value is below ALPHA. \"Detectable\" is the smallest "
        "effect the check detects with 99 % power at the sample size it used (reference/conformance/stats/power.py).",
        "",
        "| check | verdict | p-value | n | detectable (99 % power) | detail |",
        "|---|---|---|---|---|---|",
    ]
    for r in run.results:
        detail = r.detail if r.kind != "statistical" or r.status != "pass" else ""
        lines.append(f"| `{r.name}` | {_MARK[r.status]} | {_pv(r.p_value)} | {r.n or ''} | {r.effect} | "
                     f"{detail.replace('|', '/')} |")
    from .explain import headlines

    heads = headlines(run.results)
    if heads:
        lines += ["", "## Failures explained", "",
                  "One line per root cause where a known bug's signature matches (reference/conformance/explain.py); "
                  "observed and expected values and the effect in the data's units.", ""]
        for h, rs in heads:
            lines.append(f"* **{h}**" + (f" ({len(rs)} checks)" if len(rs) > 1 else ""))
            for r in rs:
                lines.append(f"  * {failure_line(r).replace('|', '/')}")
    notes = [r for r in run.results if r.status == "note"]
    if notes:
        lines += ["", "## Notes", "", "Findings that are not failures at this level (or behaviour the implementation's "
                  "framework documents: `notes=`).", ""]
        lines += [f"* `{r.name}`: {r.detail.replace('|', '/')}" for r in notes]
    refused = getattr(run.impl, "refused", {})
    for d, why in refused.items():
        lines += ["", f"Note: `{d}` was declared but refused ({why}): its checks are \"not supported\"."]
    bias = keep_rate_table(run)
    if bias:
        lines += ["", "## Observed keep rates", "", *bias]
    for p in plots:
        lines += ["", f"![{p}]({p})"]
    lines.append("")
    return "\n".join(lines)


def _keep_rows(run):
    for r in run.results:
        if r.name.startswith("keep_rate") and "kept" in r.measured:
            p = float(r.name.split("p=")[1])
            yield p, int(r.n), r.measured["kept"]


def _rarer_rel_error(v, q):
    """Relative error of the rarer outcome's rate when the keep rate is ``v`` and should be ``q``."""
    rare = min(q, 1 - q)
    return ((v if q <= 0.5 else 1 - v) - rare) / rare


def keep_rate_table(run):
    from scipy import stats

    rows = list(_keep_rows(run))
    if not rows:
        return []
    out = ["| p | n | expected keep rate | observed | relative error of the rarer outcome | 99.99 % interval |",
           "|---|---|---|---|---|---|"]
    for p, n, k in rows:
        q = keep_prob(p)
        lo, hi = stats.binomtest(k, n, q).proportion_ci(0.9999)
        a, b = sorted((_rarer_rel_error(lo, q), _rarer_rel_error(hi, q)))
        out.append(f"| {p:g} | {n} | {q:.8g} | {k / n:.8g} | {_rarer_rel_error(k / n, q):+.3%} | "
                   f"[{a:+.2%}, {b:+.2%}] |")
    return out


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def keep_rate_plot(run, path):
    from scipy import stats

    rows = list(_keep_rows(run))
    if not rows:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4))
    for i, (p, n, k) in enumerate(rows):
        q = keep_prob(p)
        lo, hi = sorted(_rarer_rel_error(v, q) for v in stats.binomtest(k, n, q).proportion_ci(0.9999))
        rel = _rarer_rel_error(k / n, q)
        ax.errorbar(i, 100 * rel, yerr=[[100 * (rel - lo)], [100 * (hi - rel)]],
                    fmt="o", color="C3" if not lo <= 0 <= hi else "C0", capsize=4)
    ax.axhline(0, color="k", lw=0.8)
    ax.set_yscale("symlog", linthresh=1)  # linear within +-1 %, logarithmic beyond: gross errors fit too
    ax.set_xticks(range(len(rows)), [f"{p:g}" for p, _, _ in rows])
    ax.set_xlabel("p (drop probability)")
    ax.set_ylabel("relative error of the rarer outcome (%)")
    ax.set_title(f"{run.impl.name}: observed keep rate, 99.99 % interval (expected: 0)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)


def qq_plot(run, path):
    pv = np.sort([r.p_value for r in run.results if r.p_value is not None])
    if pv.size < 2:
        return None
    plt = _plt()
    m = pv.size
    expected = (np.arange(1, m + 1) - 0.5) / m
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot(-np.log10(expected), -np.log10(np.maximum(pv, 1e-300)), "o", ms=4)
    top = max(-math.log10(run.alpha) + 1, -math.log10(expected[0]) + 0.5)
    ax.plot([0, top], [0, top], "k", lw=0.8)
    ax.axhline(-math.log10(run.alpha), color="C3", ls="--", lw=1, label=f"ALPHA = {run.alpha:.2g}")
    ax.set_ylim(0, min(max(top, -math.log10(max(pv[0], 1e-300)) + 1), 310))
    ax.set_xlabel("expected -log10 p (uniform)")
    ax.set_ylabel("observed -log10 p")
    ax.set_title(f"{run.impl.name}: p-values of {m} statistical checks")
    ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)


def write_json(run, path):
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(run.to_json(), indent=1, default=str) + "\n")


# --- the index of committed reports: implementation x check ----------------------------------

FAMILIES = (("semantic", "semantic/"), ("contract", "contract/"), ("keep rate", "keep_rate"),
            ("mean, variance", ("mean", "variance")), ("uniformity", "uniformity"),
            ("neighbours, periodicity", ("lag", "periodicity", "byte_sharing")), ("across calls", "cross_call"),
            ("successive calls", ("stateful/", "successive")), ("layout", "layout/"),
            ("multi-dim", "multidim"), ("stream words", "ks_words"),
            ("noise_shape", ("semantic/noise_shape", "contract/noise_shape", "noise_keep_rate")),
            ("16-bit", ("semantic/float16", "semantic/bfloat16", "contract/float16", "contract/bfloat16",
                        "half_mean")),
            ("in place", ("semantic/inplace",)))
_OWN = ("semantic/noise_shape", "contract/noise_shape", "semantic/float16", "semantic/bfloat16",
        "contract/float16", "contract/bfloat16", "semantic/inplace")  # in their own columns only


def _family_rows(checks, pre):
    pre = pre if isinstance(pre, tuple) else (pre,)
    rows = [c for c in checks if c["name"].startswith(pre)]
    if pre in (("semantic/",), ("contract/",)):
        rows = [c for c in rows if c["name"] not in _OWN]
    return rows


def _cell(rows):
    if not rows:
        return "-"
    failed = [r for r in rows if r["passed"] is False]
    ran = [r for r in rows if r["passed"] is not None]
    notes = [r for r in rows if r["status"] == "note"]
    if failed:
        return "**FAIL**: " + ", ".join(f"`{r['name']}`" for r in failed)
    if notes:
        return f"pass ({len(ran)}); note: " + ", ".join(f"`{r['name']}`" for r in notes)
    return f"pass ({len(ran)})" if ran else "n/s"


def index(root: str | Path) -> str:
    """Markdown: one row per committed report (root/<impl>/result.json), one column per family."""
    root = Path(root)
    docs = [json.loads(p.read_text()) for p in sorted(root.glob("*/result.json"))]
    order = ["reference", "cpu", "cuda"]
    docs.sort(key=lambda d: (order.index(d["impl"]) if d["impl"] in order else 9, d["impl"]))
    head = "| implementation | level | verdict | " + " | ".join(f for f, _ in FAMILIES) + " |"
    lines = [head, "|---" * (3 + len(FAMILIES)) + "|"]
    for d in docs:
        slug = next(p.parent.name for p in root.glob("*/result.json") if json.loads(p.read_text())["impl"] == d["impl"])
        cells = []
        for _, pre in FAMILIES:
            cells.append(_cell(_family_rows(d["checks"], pre)))
        verdict = "PASS" if d["verdict"] == "pass" else "**FAIL**"
        lines.append(f"| [{d['impl']}]({slug}/report.md) | {d['level']} | {verdict} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + ("\n\n`pass (k)`: k checks ran and passed; `note`: a finding that is not a failure "
                                "at this level; `n/s`: not supported; `-`: not at this level.\n")


if __name__ == "__main__":
    import sys

    sys.stdout.write(index(sys.argv[1] if len(sys.argv) > 1 else "reports/conformance"))
