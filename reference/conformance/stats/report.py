"""Render the battery's CSV (written when DROPOUT_STATS_REPORT=<path>) as markdown.

    DROPOUT_STATS_REPORT=/tmp/stats.csv pytest tests/stats
    python -m reference.conformance.stats.report /tmp/stats.csv > reports/statistics.md
"""

from __future__ import annotations

import csv
import sys
from collections import OrderedDict

from . import budget


def _pv(x: float) -> str:
    return "<1e-300" if x == 0.0 else f"{x:.3g}"


def render(rows: list[dict]) -> str:
    for r in rows:
        r["p_value"] = float(r["p_value"])
        r["passed"] = str(r["passed"]) in ("True", "true", "1")
        if str(r.get("simulated")) == "True":
            r["backend"] += " (CUDA simulator)"
    real = [r for r in rows if r["expect"] == "pass"]
    mutants = [r for r in rows if r["expect"] == "reject"]
    backends = list(OrderedDict.fromkeys(r["backend"] for r in real))
    seeds = sorted({(r["seed_mode"], r["master_seed"]) for r in rows})
    alphas = sorted({float(r["alpha"]) for r in rows})
    out = ["# Statistical battery: report", ""]
    out.append(f"Family-wise false-alarm budget {budget.FAMILY_ALPHA:g} per pytest session, Bonferroni "
               "over the session's distinct hypotheses: per-test level ALPHA = "
               + ", ".join(f"{a:.3g}" for a in alphas)
               + " (one value per session; reference/conformance/stats/budget.py). "
               "See docs/STATISTICS.md for what each test checks.")
    out.append("")
    out.append("Master seed(s): " + ", ".join(f"{s} ({m})" for m, s in seeds)
               + "; replay with `pytest tests/stats --stat-seed=<seed>`.")
    out.append("")
    out.append("## Summary")
    out.append("")
    out.append("| backend | hypotheses | rejected (p < ALPHA) | smallest p-value | verdict |")
    out.append("|---|---|---|---|---|")
    for b in backends:
        rs = [r for r in real if r["backend"] == b]
        bad = [r for r in rs if not r["passed"]]
        mn = min(rs, key=lambda r: r["p_value"])
        out.append(f"| {b} | {len(rs)} | {len(bad)} | {_pv(mn['p_value'])} ({mn['test']}) | "
                   f"{'PASS' if not bad else 'FAIL'} |")
    if mutants:
        names = list(OrderedDict.fromkeys(r["backend"] for r in mutants))
        caught = [n for n in names if any(r["passed"] for r in mutants if r["backend"] == n)]
        out.append(f"| mutants | {len(names)} | caught: {len(caught)} of {len(names)} | | "
                   f"{'PASS' if len(caught) == len(names) else 'FAIL'} |")
    out.append("")
    out.append("## Every hypothesis (p-values; n in parentheses where it differs from the first backend)")
    out.append("")
    out.append("| test | p | n | " + " | ".join(backends) + " | verdict |")
    out.append("|---|---|---|" + "---|" * len(backends) + "---|")
    tests = list(OrderedDict.fromkeys(r["test"] for r in real))
    for t in tests:
        by_backend = {r["backend"]: r for r in real if r["test"] == t}
        first = next(iter(by_backend.values()))
        cells = []
        for b in backends:
            row = by_backend.get(b)
            if row is None:
                cells.append("")
                continue
            cell = _pv(row["p_value"])
            if row["n"] != first["n"]:
                cell += f" ({row['n']})"
            cells.append(f"**{cell}**" if not row["passed"] else cell)
        verdict = "ok" if all(r["passed"] for r in by_backend.values()) else "**REJECTED**"
        p = first["p"] if first["p"] != "nan" else "-"
        out.append(f"| {t} | {p} | {first['n']} | " + " | ".join(cells) + f" | {verdict} |")
    if mutants:
        out.append("")
        out.append("## Mutant kernels (must be rejected)")
        out.append("")
        out.append("| mutant | probe | n | p | p-value | caught |")
        out.append("|---|---|---|---|---|---|")
        for r in mutants:
            out.append(f"| {r['backend'].removeprefix('mutant:')} | {r['test']} | {r['n']} | {r['p']} | "
                       f"{_pv(r['p_value'])} | {'yes' if r['passed'] else '**no**'} |")
    out.append("")
    return "\n".join(out)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m reference.conformance.stats.report <csv>", file=sys.stderr)
        return 2
    with open(argv[0], newline="") as f:
        rows = list(csv.DictReader(f))
    sys.stdout.write(render(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
