"""The pytest plugin (entry point ``pytest11: dropout_check``), loaded in every pytest session
once the package is installed:

* ``pytest --dropout-impl IMPL [--dropout-level contract|statistical] [--dropout-quick]``
  runs the conformance checks (reference/conformance/pytest_checks.py) on IMPL, from any
  directory, one test per check ("not supported" checks are skipped);
* ``--stat-seed fixed|random|INT`` and the fixtures ``stat_seeds`` and ``judge`` serve the
  project's own statistical tests too (tests/stats), so both share one false-alarm budget:
  per session, ALPHA = FAMILY_ALPHA / (distinct hypotheses collected), fixed after
  deselection (reference/stats/budget.py);
* ``DROPOUT_STATS_REPORT=<path>`` appends one CSV row per judged hypothesis.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pytest

_SEEDS = pytest.StashKey[object]()
_ALPHA = pytest.StashKey[float]()
_COUNT = pytest.StashKey[int]()
_ROWS = pytest.StashKey[list]()
_PLAN = pytest.StashKey[object]()

REPORT_ENV = "DROPOUT_STATS_REPORT"
FIELDS = ("test", "backend", "n", "p", "p_value", "alpha", "passed", "expect",
          "seed_mode", "master_seed", "simulated", "nodeid")


def pytest_addoption(parser):
    g = parser.getgroup("dropout-check", "dropout conformance (dropout-suite)")
    g.addoption("--dropout-impl", default=None, metavar="IMPL",
                help="run the conformance checks on IMPL: a registry name (reference, cpu, cuda, "
                "torch-dropout, textbook-numpy, quant8, ...) or package.module:attribute")
    g.addoption("--dropout-level", default=None, choices=("contract", "statistical"),
                help="contract: bit for bit against our stream, plus everything else; statistical: "
                "any RNG (default: contract when the implementation claims our stream)")
    g.addoption("--dropout-quick", action="store_true", help="small samples (dropout-check --quick)")
    g.addoption("--stat-seed", default="fixed",
                help="seeds of the statistical checks: 'fixed' (deterministic, as in CI), 'random' "
                "(fresh, printed so a failure can be replayed) or an integer master seed")


def seeds(config):
    if _SEEDS not in config.stash:
        from reference.stats.sampling import seeds_from_option

        try:
            config.stash[_SEEDS] = seeds_from_option(config.getoption("--stat-seed"))
        except ValueError as e:
            raise pytest.UsageError(str(e)) from None
    return config.stash[_SEEDS]


def _plan(config):
    if _PLAN not in config.stash:
        from kernels.registry import load
        from reference.conformance.runner import plan

        spec = config.getoption("--dropout-impl")
        try:
            config.stash[_PLAN] = plan(load(spec), config.getoption("--dropout-level"),
                                       quick=config.getoption("--dropout-quick"))
        except ValueError as e:
            raise pytest.UsageError(f"--dropout-impl {spec}: {e}") from None
    return config.stash[_PLAN]


def pytest_configure(config):
    if config.getoption("--dropout-impl"):
        checks = Path(__file__).resolve().parents[1] / "reference" / "conformance" / "pytest_checks.py"
        explicit = config.args_source == pytest.Config.ArgsSource.ARGS
        config.args[:] = ([*config.args] if explicit else []) + [str(checks)]
        _plan(config)  # a bad IMPL is a usage error before collection


def pytest_generate_tests(metafunc):
    if "dropout_check" in metafunc.fixturenames:
        pl = _plan(metafunc.config)
        params = [pytest.param(c, id=c.name) for c in pl.checks]
        params += [pytest.param(c, id=c.name, marks=pytest.mark.skip(reason=why)) for c, why in pl.skipped]
        metafunc.parametrize("dropout_check", params)


@pytest.fixture(scope="session")
def dropout_plan(request):
    pl = _plan(request.config)
    pl.alpha = alpha(request.config)
    return pl


@pytest.fixture(scope="session")
def stat_seeds(request):
    return seeds(request.config)


def alpha(config) -> float:
    from reference.stats import budget

    return config.stash.get(_ALPHA, budget.FAMILY_ALPHA)


# --- the session's budget: every statistical hypothesis collected, counted once -------------


def _hypothesis(item):
    """The hypothesis key of a collected item, or None (not a false-alarm hypothesis)."""
    cs = getattr(item, "callspec", None)
    if cs is None or any(m.name == "skip" for m in item.iter_markers()):
        return None
    from reference.stats import budget

    if "dropout_check" in cs.params:
        c = cs.params["dropout_check"]
        if c.kind != "statistical":
            return None
        pl = _plan(item.config)
        return budget.hypothesis_key(c.probe, pl.impl, c.probe.size(pl.impl, pl.mode))
    probe = cs.params.get("probe")
    if probe is None or item.get_closest_marker("expect_reject"):
        return None
    target = cs.params.get("backend", cs.params.get("kernel"))
    if probe.stream_level:
        return budget.hypothesis_key(probe, None, probe.n)
    if target is None:
        return None
    from kernels.registry import wrap

    impl = wrap(target)
    n = probe.size(impl, "full")
    return None if n is None else budget.hypothesis_key(probe, impl, n)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(session, config, items):
    keys = {k for k in map(_hypothesis, items) if k is not None}
    if keys:
        from reference.stats import budget

        config.stash[_COUNT] = len(keys)
        config.stash[_ALPHA] = budget.alpha_for(keys)


def record(config, **row):
    s = seeds(config)
    row.update(alpha=alpha(config), seed_mode=s.mode, master_seed=s.master)
    config.stash.setdefault(_ROWS, []).append(row)


@pytest.fixture
def stat_record(request):
    """``stat_record(**row)``: one CSV row of the report (FIELDS), this session's ALPHA and seeds."""
    return lambda **row: record(request.config, nodeid=request.node.nodeid, **row)


@pytest.fixture
def judge(request, stat_seeds):
    """``judge(probe, impl)``: run one hypothesis at the impl's size, record it, assert p >= ALPHA."""

    def _judge(probe, target, name=None):
        from kernels.registry import wrap

        impl = wrap(target)
        if probe.size(impl) is None:
            pytest.skip("too slow for the CUDA simulator: the reference and cpu runs cover it at full "
                        "size, and cuda reproduces the reference bit for bit (test_reference_agreement)")
        a = alpha(request.config)
        pv, n = probe(impl, stat_seeds)
        name = name or ("stream" if probe.stream_level else impl.name)
        record(request.config, test=probe.label, backend=name, n=n, p=probe.p, p_value=pv,
               passed=pv >= a, expect="pass", simulated=impl.simulated, nodeid=request.node.nodeid)
        assert pv >= a, (f"{probe.label} on {name}: p-value {pv:.3g} < ALPHA {a:.3g} (n={n}); master seed "
                         f"{stat_seeds.master} ({stat_seeds.mode}): replay with --stat-seed={stat_seeds.master}")
        return pv

    return _judge


def pytest_sessionfinish(session, exitstatus):
    rows = session.config.stash.get(_ROWS, [])
    path = os.environ.get(REPORT_ENV)
    if rows and path:
        new = not os.path.exists(path) or os.path.getsize(path) == 0
        with open(path, "a", newline="") as f:
            w = csv.DictWriter(f, fieldnames=FIELDS)
            if new:
                w.writeheader()
            w.writerows(rows)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    rows = config.stash.get(_ROWS, [])
    if not rows and _COUNT not in config.stash:
        return
    from reference.stats import budget

    s, tr = seeds(config), terminalreporter
    tr.section("statistical checks")
    judged = [r for r in rows if r["expect"] == "pass"]
    failed = [r for r in judged if not r["passed"]]
    count = config.stash.get(_COUNT, 0)
    budget_line = (f"{count} distinct hypotheses collected, ALPHA = {budget.FAMILY_ALPHA:g}/{count} = "
                   f"{alpha(config):.3g}" if count else "no false-alarm hypotheses collected")
    tr.write_line(f"master seed {s.master} ({s.mode}); replay: --stat-seed={s.master}; {budget_line}; "
                  f"{len(judged)} judged, {len(failed)} rejected; {len(rows) - len(judged)} mutant rows")
    if path := os.environ.get(REPORT_ENV):
        tr.write_line(f"rows appended to {path}")
