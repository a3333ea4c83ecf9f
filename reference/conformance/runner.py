"""One machinery for every way in (``dropout-check``, ``pytest --dropout-impl``, Python):
the plan of checks for an implementation and level, the false-alarm budget of the run, and
the execution of one check into a :class:`Result`."""

from __future__ import annotations

import fnmatch
import math
import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace

from reference.conformance.stats import battery, budget, power
from reference.conformance.stats.sampling import Probe, Seeds, clear_cache, seeds_from_option

from . import contract, explain, layout, semantic, stateful
from .protocol import Implementation, Note, Unsupported, as_implementation

LEVELS = ("contract", "statistical")


@dataclass(frozen=True)
class Check:
    name: str                 # "semantic/p0_identity", "contract/forward", or a probe label
    kind: str                 # "semantic" | "contract" | "statistical"
    needs: tuple = ()
    fn: Callable | None = field(default=None, repr=False, compare=False)  # a deterministic check,
    probe: Probe | None = field(default=None, repr=False, compare=False)  # or a statistical one
    doc: str = ""


@dataclass
class Result:
    name: str
    kind: str
    status: str               # "pass" | "fail" | "error" | "not supported" | "note"
    passed: bool | None       # None: not supported
    p_value: float | None = None
    alpha: float | None = None
    n: str | None = None
    effect: str = ""          # smallest effect detected with 99 % power at this n
    detail: str = ""
    measured: dict = field(default_factory=dict)  # e.g. {"kept": count} of a keep-rate probe
    seconds: float = 0.0
    observed: str = ""        # a failure explained (explain.py): what was seen,
    expected: str = ""        # what the contract or the null model expects,
    effect_size: str = ""     # the difference in the data's units (%, ulps, keep-rate points),
    cause: str = ""           # and the likely cause where a known bug's signature matches


def checks(level: str, include_slow: bool = False) -> list[Check]:
    """Every check of a level, in report order (applicability is decided by :func:`plan`)."""
    out = [Check(f"semantic/{k}", "semantic", needs, fn, doc=(fn.__doc__ or "").strip().split("\n")[0])
           for k, (needs, fn) in semantic.CHECKS.items()]
    out += [Check(f"layout/{k}", "semantic", needs, fn, doc=(fn.__doc__ or "").strip().split("\n")[0])
            for k, (needs, fn) in layout.CHECKS.items()]
    out += [Check(f"stateful/{k}", "semantic", needs, fn, doc=(fn.__doc__ or "").strip().split("\n")[0])
            for k, (needs, fn) in stateful.CHECKS.items()]
    if level == "contract":
        out += [Check(f"contract/{k}", "contract", needs, fn) for k, (needs, fn) in contract.CHECKS.items()]
    probes = list(battery.backend_probes()) + list(battery.stateful_probes())
    probes += list(battery.slow_probes()) if include_slow else []
    if level == "contract":  # the raw words of our stream: only an implementation of it needs them
        probes += list(battery.stream_probes())
    out += [Check(pr.label, "statistical", pr.needs, probe=pr, doc=pr.doc) for pr in probes]
    return out


@dataclass
class Plan:
    impl: Implementation
    level: str
    mode: str
    checks: list              # applicable checks (declared capabilities and sizes allow them)
    skipped: list             # (check, reason): not supported
    alpha: float              # per-test level: FAMILY_ALPHA / distinct hypotheses of this plan

    @property
    def hypotheses(self) -> int:
        return len({hyp_key(c, self.impl, self.mode) for c in self.checks if c.kind == "statistical"})


def hyp_key(check, impl, mode):
    return budget.hypothesis_key(check.probe, impl, check.probe.size(impl, mode))


def plan(impl, level: str | None = None, quick: bool = False, names=None, include_slow=False) -> Plan:
    impl = as_implementation(impl)
    level = level or ("contract" if impl.claims_contract else "statistical")
    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}, got {level!r}")
    mode = "quick" if quick else "full"
    todo, skipped = [], []
    for c in checks(level, include_slow):
        if names and not any(fnmatch.fnmatchcase(c.name, pat) for pat in names):
            continue
        missing = [n for n in c.needs if not impl.capabilities.has(n)]
        if missing:
            skipped.append((c, f"not supported: {', '.join(missing)}"))
        elif c.probe is not None and c.probe.size(impl, mode) is None:
            skipped.append((c, "not run at this size (CUDA simulator or --quick)"))
        else:
            todo.append(c)
    keys = [hyp_key(c, impl, mode) for c in todo if c.kind == "statistical"]
    return Plan(impl, level, mode, todo, skipped, budget.alpha_for(keys))


def execute(check: Check, pl: Plan, seeds: Seeds, retried: bool = False) -> Result:
    impl, t0 = pl.impl, time.perf_counter()
    strict = pl.level == "contract"
    res = Result(check.name, check.kind, "pass", True)
    try:
        if check.probe is not None:
            pv, n, res.measured = check.probe.measure(impl, seeds, pl.mode)
            res.p_value, res.alpha, res.n = pv, pl.alpha, _n(n)
            res.passed = pv >= pl.alpha
            res.effect = power.detectable(check.probe, n, pl.alpha)[0]
            res.detail = check.doc
        elif check.fn is not None:
            if check.kind == "contract":  # fresh seeds under --stat-seed random (fixed: the default)
                res.passed, res.detail = check.fn(impl, strict, seeds=seeds)
            else:
                res.passed, res.detail = check.fn(impl, strict)
            res.passed = bool(res.passed)
        else:
            raise TypeError(f"{check.name} has neither a probe nor a check function")
        res.status = "pass" if res.passed else "fail"
        if not res.passed and check.name in impl.notes:  # what the framework documents: a note
            res.status, res.passed = "note", True
            res.detail = f"documented behaviour of {impl.name}, not a failure: {res.detail}"
    except Note as e:  # not forbidden at this level, but worth a reader's attention
        res.status, res.passed, res.detail = "note", True, str(e)
    except Unsupported as e:
        res.status, res.passed, res.detail = "not supported", None, str(e)
    except Exception as e:  # the implementation raised where it should have answered
        refused = _refused_dtypes(impl)
        if refused and not retried:  # one root cause, one headline: a dtype refused is "not supported"
            return execute(check, pl, seeds, retried=True)
        res.status, res.passed, res.detail = "error", False, f"{type(e).__name__}: {e}"
    if res.passed is False:
        explain.explain(res, check.probe.p if check.probe is not None else None)
    res.seconds = time.perf_counter() - t0
    return res


def _refused_dtypes(impl) -> list:
    """Dtypes the implementation declared (or was probed for) but refuses now: dropped from its
    capabilities, so that every check that needs them is "not supported" (one root cause, not
    one error per check); the refusal is kept in ``impl.refused``."""
    import numpy as np

    from reference import vocab

    out = []
    for d in impl.capabilities.dtypes:
        try:
            x = np.linspace(1, 2, 16).astype(vocab.np_dtype(d))
            impl.forward_fn(x, 0.5, seed=1, offset=0, training=True, mask_format=None)
        except Exception as e:
            out.append(d)
            impl.refused[d] = f"{type(e).__name__}: {e}"
    if out and len(out) < len(impl.capabilities.dtypes):
        kept = tuple(d for d in impl.capabilities.dtypes if d not in out)
        impl.capabilities = replace(impl.capabilities, dtypes=kept)
        return out
    return []


def _n(n):
    if isinstance(n, tuple) and n and isinstance(n[0], tuple):  # (x shape, noise shape): mask elements over x
        return " over ".join("x".join(map(str, s)) for s in reversed(n))
    return "x".join(map(str, n)) if isinstance(n, tuple) else str(n)


@dataclass
class Run:
    impl: Implementation
    level: str
    mode: str
    seeds: Seeds
    alpha: float
    hypotheses: int
    results: list
    seconds: float = 0.0
    environment: dict = field(default_factory=dict)

    @property
    def verdict(self) -> str:
        return "fail" if any(r.passed is False for r in self.results) else "pass"

    def to_json(self) -> dict:
        return {
            "impl": self.impl.name, "level": self.level, "verdict": self.verdict,
            "mode": self.mode, "master_seed": self.seeds.master, "seed_mode": self.seeds.mode,
            "family_alpha": budget.FAMILY_ALPHA, "alpha": self.alpha, "hypotheses": self.hypotheses,
            "capabilities": self.impl.capabilities.as_dict(), "seconds": round(self.seconds, 2),
            "environment": self.environment,
            "checks": [{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in asdict(r).items()}
                       for r in self.results],
        }

    def to_frame(self):
        import pandas as pd

        df = pd.DataFrame([asdict(r) for r in self.results])
        df.insert(0, "impl", self.impl.name)
        df.insert(1, "level", self.level)
        return df


def environment() -> dict:
    import numpy
    import scipy

    env = {"python": platform.python_version(), "numpy": numpy.__version__, "scipy": scipy.__version__,
           "machine": platform.machine(), "system": platform.system()}
    try:
        import numba
        env["numba"] = numba.__version__
    except ImportError:
        pass
    import sys
    if "torch" in sys.modules:
        env["torch"] = sys.modules["torch"].__version__
    return env


def run(impl, level: str | None = None, stat_seed="fixed", quick: bool = False, names=None,
        include_slow: bool = False, progress: Callable | None = None) -> Run:
    """Run every applicable check; ``progress(check)`` is called before each one."""
    t0 = time.perf_counter()
    pl = plan(impl, level, quick, names, include_slow)
    seeds = stat_seed if isinstance(stat_seed, Seeds) else seeds_from_option(stat_seed)
    results = [Result(c.name, c.kind, "not supported", None, detail=why) for c, why in pl.skipped
               if why.startswith("not supported")]
    for c in pl.checks:
        if progress:
            progress(c)
        results.append(execute(c, pl, seeds))
    order = {c.name: i for i, c in enumerate(checks(pl.level, include_slow))}
    results.sort(key=lambda r: order[r.name])
    clear_cache()  # samples are big; a run owns them
    return Run(pl.impl, pl.level, pl.mode, seeds, pl.alpha, pl.hypotheses, results,
               time.perf_counter() - t0, environment())


def results_frame(impl, **kw):
    """The Python way in: ``results_frame(impl, level=..., stat_seed=..., quick=...)`` runs the
    checks and returns a pandas DataFrame, one row per check."""
    return run(impl, **kw).to_frame()
