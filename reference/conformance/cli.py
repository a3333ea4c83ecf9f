"""``dropout-check IMPL``: judge a dropout implementation and say what is wrong with it.

    dropout-check reference                       # our NumPy oracle, level contract
    dropout-check torch-dropout --quick           # PyTorch's F.dropout, level statistical
    dropout-check mypkg.kernels:dropout --json r.json

IMPL: a registry name (``dropout-check --list``) or ``package.module:attribute`` naming an
object or module with the backends' API, a plain callable f(x, p, seed) -> y, or a stateful
f(x, p) -> y drawing from a generator it holds (with f.reseed(seed) where it can be reseeded).
Exit 0 when every applicable check passes, 1 when one fails, 2 on a usage error.
"""

from __future__ import annotations

import argparse
import dataclasses
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
    ap.add_argument("--out", help="report directory (default: reports/conformance/<impl>; with --quick "
                    "reports/_scratch/conformance/<impl>, so a quick run never overwrites a committed full report)")
    ap.add_argument("--json", help="also write the results as JSON to this path")
    ap.add_argument("--only", action="append", metavar="PATTERN", help="run only checks matching (fnmatch; repeatable)")
    ap.add_argument("--seed-bits", type=int, metavar="BITS",
                    help="the implementation takes BITS-bit seeds (e.g. 32 for Keras, Triton's tl.rand): every "
                    "seed a check uses is hashed to BITS bits, so neighbouring seeds stay distinct")
    ap.add_argument("--note", action="append", metavar="CHECK", default=[],
                    help="report a failure of CHECK as a note: behaviour the framework documents (e.g. "
                    "stateful/p0_keeps_generator); repeatable")
    ap.add_argument("--list", action="store_true", help="list the registry's implementations and exit")
    ap.add_argument("--theory", action="store_true",
                    help="check the claims of the theory users learn (docs/THEORY.md) instead of the conformance "
                    "checks; exit 1 when one fails")
    return ap


def slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "impl"


def default_out(name: str, quick: bool) -> str:
    """``reports/conformance/<impl>`` for a full run; a quick run goes to the gitignored
    ``reports/_scratch/conformance/<impl>``: it never overwrites a committed full report."""
    return f"reports/{'_scratch/' if quick else ''}conformance/{slug(name)}"


def main(argv=None) -> int:
    ap = _parser()
    args = ap.parse_args(argv)  # exits 2 on a usage error
    from reference.conformance import loader

    if args.list:
        print("\n".join(loader.names()))
        return 0
    if not args.impl:
        ap.error("IMPL is required (dropout-check --list shows the registry)")
    from reference.conformance import explain, report, runner
    from reference.conformance.stats.sampling import seeds_from_option

    try:
        impl = loader.load(args.impl)
        if args.seed_bits is not None and not 1 <= args.seed_bits <= 64:
            raise ValueError(f"--seed-bits must be in [1, 64], got {args.seed_bits}")
        known = {c.name for c in runner.checks("contract", include_slow=True)}
        unknown = [n for n in args.note if n not in known]
        if unknown:
            raise ValueError(f"--note {unknown[0]!r}: not a check name (dropout-check IMPL --only 'PATTERN' lists "
                             "them in its report)")
        if args.seed_bits is not None or args.note:  # a copy: the loaded implementation is shared (memoized)
            impl = dataclasses.replace(impl, seed_bits=args.seed_bits or impl.seed_bits,
                                       notes=tuple(dict.fromkeys((*impl.notes, *args.note))))
        seeds = seeds_from_option(args.stat_seed)
        pl = runner.plan(impl, args.level, args.quick, args.only)
    except (ValueError, TypeError) as e:
        ap.error(str(e))
    if args.theory:
        from reference.conformance import theory_report

        out = args.out or default_out(impl.name, args.quick) + "/theory"
        return theory_report.cli_main(impl, seeds, quick=args.quick, out=out, json_path=args.json, names=args.only)
    from tqdm import tqdm

    bar = tqdm(total=len(pl.checks), desc=impl.name, unit="check", file=sys.stderr, leave=False)

    def progress(check):
        bar.set_postfix_str(check.name, refresh=False)
        bar.update(1)

    run = runner.run(impl, args.level, seeds, args.quick, args.only, progress=progress)
    bar.close()
    files = report.write(run, args.out or default_out(impl.name, args.quick))
    if args.json:
        report.write_json(run, args.json)
    failed = [r for r in run.results if r.passed is False]
    unsupported = sum(r.status == "not supported" for r in run.results)
    print(f"{impl.name}: {run.verdict.upper()} at level {run.level} ({len(run.results) - unsupported} checks, "
          f"{len(failed)} failed, {unsupported} not supported; ALPHA = {run.alpha:.3g} over {run.hypotheses} "
          f"hypotheses; master seed {seeds.master} ({seeds.mode}); {run.seconds:.1f} s)")
    for r in failed:  # p-value, observed, expected and the effect in the data's units
        print("  FAIL " + report.failure_line(r))
    heads = [(h, rs) for h, rs in explain.headlines(run.results) if rs[0].cause]
    if heads:
        print("likely causes (one headline per root cause):")
        for h, rs in heads:
            print(f"  * {h}: {', '.join(r.name for r in rs)}")
    for d, why in run.impl.refused.items():
        print(f"  note: {d} was declared but is refused ({why}): its checks are 'not supported'")
    print(f"report: {files[0]}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
