"""``dropout-check IMPL``: judge a dropout implementation and say what is wrong with it.

    dropout-check reference                       # our NumPy oracle, level contract
    dropout-check torch-dropout --quick           # PyTorch's F.dropout, level statistical
    dropout-check mypkg.kernels:dropout --json r.json

IMPL: a registry name (``dropout-check --list``) or ``package.module:attribute`` naming an
object or module with the backends' API, or a plain callable f(x, p, seed) -> y. Exit 0
when every applicable check passes, 1 when one fails, 2 on a usage error.
"""

from __future__ import annotations

import argparse
import re
import sys


def _parser():
    ap = argparse.ArgumentParser(prog="dropout-check", description=__doc__.split("\n\n")[0].split(": ", 1)[1],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("impl", nargs="?", help="registry name or package.module:attribute")
    ap.add_argument("--level", choices=("contract", "statistical"),
                    help="contract: bit for bit against docs/RNG_STREAM.md plus everything else; "
                    "statistical: any RNG (default: contract when the implementation claims our stream)")
    ap.add_argument("--stat-seed", default="fixed", help="fixed (default), random, or an integer master seed")
    ap.add_argument("--quick", action="store_true", help="small samples (< 30 s)")
    ap.add_argument("--out", help="report directory (default: reports/conformance/<impl>)")
    ap.add_argument("--json", help="also write the results as JSON to this path")
    ap.add_argument("--only", action="append", metavar="PATTERN", help="run only checks matching (fnmatch; repeatable)")
    ap.add_argument("--list", action="store_true", help="list the registry's implementations and exit")
    return ap


def slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "impl"


def main(argv=None) -> int:
    ap = _parser()
    args = ap.parse_args(argv)  # exits 2 on a usage error
    from reference.conformance import loader

    if args.list:
        print("\n".join(loader.names()))
        return 0
    if not args.impl:
        ap.error("IMPL is required (dropout-check --list shows the registry)")
    from reference.conformance import report, runner
    from reference.conformance.stats.sampling import seeds_from_option

    try:
        impl = loader.load(args.impl)
        seeds = seeds_from_option(args.stat_seed)
        pl = runner.plan(impl, args.level, args.quick, args.only)
    except (ValueError, TypeError) as e:
        ap.error(str(e))
    from tqdm import tqdm

    bar = tqdm(total=len(pl.checks), desc=impl.name, unit="check", file=sys.stderr, leave=False)

    def progress(check):
        bar.set_postfix_str(check.name, refresh=False)
        bar.update(1)

    run = runner.run(impl, args.level, seeds, args.quick, args.only, progress=progress)
    bar.close()
    files = report.write(run, args.out or f"reports/conformance/{slug(impl.name)}")
    if args.json:
        report.write_json(run, args.json)
    failed = [r for r in run.results if r.passed is False]
    unsupported = sum(r.status == "not supported" for r in run.results)
    print(f"{impl.name}: {run.verdict.upper()} at level {run.level} ({len(run.results) - unsupported} checks, "
          f"{len(failed)} failed, {unsupported} not supported; ALPHA = {run.alpha:.3g} over {run.hypotheses} "
          f"hypotheses; master seed {seeds.master} ({seeds.mode}); {run.seconds:.1f} s)")
    for r in failed:
        pv = f" p = {r.p_value:.3g}" if r.p_value is not None else ""
        print(f"  FAIL {r.name}:{pv} {r.detail}")
    print(f"report: {files[0]}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
