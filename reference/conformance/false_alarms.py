"""The false-alarm rate, measured: ``python -m reference.conformance.false_alarms --runs 20``
runs ``dropout-check reference --stat-seed random`` (default sizes, level contract: every
check, the contract checks on fresh seeds too) in fresh processes and writes
reports/conformance/false_alarms.md: one row per run, its master seed (to replay it), the
smallest p-value and the verdict. A correct implementation fails a run with probability at
most FAMILY_ALPHA (Bonferroni), so any failure here is a false alarm to investigate."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from .regenerate import check_in_fresh_process


def one_run(impl: str, workdir: Path, i: int) -> dict:
    out = workdir / f"run{i}"
    t0 = time.perf_counter()
    r = check_in_fresh_process(impl, out, "--stat-seed", "random")
    seconds = time.perf_counter() - t0
    if r.returncode not in (0, 1):
        return {"error": (r.stderr or r.stdout)[-500:], "seconds": seconds}
    d = json.loads((out / "result.json").read_text())
    pvs = [c["p_value"] for c in d["checks"] if c["p_value"] is not None]
    failed = [c["name"] for c in d["checks"] if c["passed"] is False]
    return {"master": d["master_seed"], "hypotheses": d["hypotheses"], "alpha": d["alpha"],
            "min_p": min(pvs) if pvs else None, "failed": failed, "verdict": d["verdict"], "seconds": seconds}


def markdown(impl: str, runs: list[dict]) -> str:
    ok = [r for r in runs if "error" not in r]
    alarms = [r for r in ok if r["failed"]]
    h = ok[0]["hypotheses"] if ok else 0
    a = ok[0]["alpha"] if ok else float("nan")
    smallest = min((r["min_p"] for r in ok if r["min_p"] is not None), default=float("nan"))
    lines = ["# False alarms, measured", "",
             f"`python -m reference.conformance.false_alarms --runs {len(runs)}`: `dropout-check {impl} --stat-seed "
             f"random` (default sizes, level contract: every check, {h} hypotheses at ALPHA = {a:.3g}; the contract "
             f"checks on fresh seeds too) run {len(runs)} times on fresh 63-bit master seeds, each in a fresh "
             f"process, on the shared 2-core machine: **{len(alarms)} of {len(ok)} runs raised a false alarm**"
             + (f" ({len(runs) - len(ok)} ended in an error)" if len(ok) < len(runs) else "")
             + f". The smallest p-value of any run was {smallest:.2g} ({smallest / a:.0f} times ALPHA). With a "
             "family-wise rate of at most 1e-4 per run, 20 runs can only show that nothing is grossly "
             "miscalibrated (a rate of 1e-4 would need ~30,000 runs to see once); the bound itself is "
             "Bonferroni's, valid whatever the dependence between the checks.", "",
             "| run | master seed | hypotheses | ALPHA | smallest p-value | verdict | time |",
             "|---|---|---|---|---|---|---|"]
    for i, r in enumerate(runs, 1):
        if "error" in r:
            lines.append(f"| {i} | - | - | - | - | ERROR: {r['error'].splitlines()[-1][:80]} | {r['seconds']:.0f} s |")
            continue
        verdict = "PASS" if not r["failed"] else "**FAIL**: " + ", ".join(f"`{n}`" for n in r["failed"])
        lines.append(f"| {i} | {r['master']} | {r['hypotheses']} | {r['alpha']:.3g} | {r['min_p']:.2g} | {verdict} | "
                     f"{r['seconds']:.0f} s |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m reference.conformance.false_alarms", description=__doc__)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--impl", default="reference")
    ap.add_argument("--out", default="reports/conformance/false_alarms.md")
    args = ap.parse_args(argv)
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(1, args.runs + 1):
            runs.append(one_run(args.impl, Path(tmp), i))
            r = runs[-1]
            print(f"run {i}: {r.get('verdict', 'error')} min p {r.get('min_p')} ({r['seconds']:.0f} s)", flush=True)
    Path(args.out).write_text(markdown(args.impl, runs))
    print(f"wrote {args.out}")
    return 1 if any(r.get("failed") or "error" in r for r in runs) else 0


if __name__ == "__main__":
    sys.exit(main())
