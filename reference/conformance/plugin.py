"""The pytest plugin (entry point ``pytest11: dropout_check``), loaded in every pytest session
once the package is installed. It adds options and serves its own test module; it knows no
fixture of any project's tests.

* ``pytest --dropout-impl IMPL [--dropout-level contract|statistical] [--dropout-quick]``
  runs the conformance checks (the test module ``reference.conformance.test_dropout_impl``)
  on IMPL, from any directory, one test per check ("not supported" checks are skipped);
* ``--stat-seed fixed|random|INT`` and the fixture ``stat_seeds`` choose the seeds of every
  statistical test of the session;
* the session's false-alarm budget: ALPHA = FAMILY_ALPHA / (distinct hypotheses collected),
  fixed after deselection (reference/conformance/stats/budget.py). A collected item is a
  hypothesis when the hook ``pytest_dropout_hypothesis(item)`` returns its key: the plugin
  answers for its own checks, a project's conftest for its own statistical tests;
* :func:`record` keeps one row per judged hypothesis; ``DROPOUT_STATS_REPORT=<path>``
  appends them to a CSV.
"""

from __future__ import annotations

import csv
import importlib.util
import os

import pytest

_SEEDS = pytest.StashKey[object]()
_ALPHA = pytest.StashKey[float]()
_COUNT = pytest.StashKey[int]()
_ROWS = pytest.StashKey[list]()
_PLAN = pytest.StashKey[object]()

CHECKS_MODULE = "reference.conformance.test_dropout_impl"
REPORT_ENV = "DROPOUT_STATS_REPORT"
FIELDS = ("test", "backend", "n", "p", "p_value", "alpha", "passed", "expect",
          "seed_mode", "master_seed", "simulated", "nodeid")


class HookSpecs:
    @pytest.hookspec(firstresult=True)
    def pytest_dropout_hypothesis(self, item):
        """The false-alarm hypothesis key of a collected item (budget.hypothesis_key), or None."""


def pytest_addhooks(pluginmanager):
    pluginmanager.add_hookspecs(HookSpecs)


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
    """The session's seeds (reference.conformance.stats.sampling.Seeds), from --stat-seed."""
    if _SEEDS not in config.stash:
        from reference.conformance.stats.sampling import seeds_from_option

        try:
            config.stash[_SEEDS] = seeds_from_option(config.getoption("--stat-seed"))
        except ValueError as e:
            raise pytest.UsageError(str(e)) from None
    return config.stash[_SEEDS]


def _plan(config):
    if _PLAN not in config.stash:
        from reference.conformance.loader import load
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
        spec = importlib.util.find_spec(CHECKS_MODULE)
        assert spec is not None and spec.origin is not None, CHECKS_MODULE
        explicit = config.args_source == pytest.Config.ArgsSource.ARGS
        config.args[:] = ([*config.args] if explicit else []) + [spec.origin]
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
    """The session's per-hypothesis false-alarm rate."""
    from reference.conformance.stats import budget

    return config.stash.get(_ALPHA, budget.FAMILY_ALPHA)


# --- the session's budget: every statistical hypothesis collected, counted once -------------


def _skipped(item) -> bool:
    return any(m.name == "skip" for m in item.iter_markers())


@pytest.hookimpl(trylast=True)
def pytest_dropout_hypothesis(item):
    cs = getattr(item, "callspec", None)
    if cs is None or "dropout_check" not in cs.params:
        return None
    c = cs.params["dropout_check"]
    if c.kind != "statistical":
        return None
    from reference.conformance.stats import budget

    pl = _plan(item.config)
    return budget.hypothesis_key(c.probe, pl.impl, c.probe.size(pl.impl, pl.mode))


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(session, config, items):
    hook = config.hook.pytest_dropout_hypothesis
    keys = {k for item in items if not _skipped(item) and (k := hook(item=item)) is not None}
    if keys:
        from reference.conformance.stats import budget

        config.stash[_COUNT] = len(keys)
        config.stash[_ALPHA] = budget.alpha_for(keys)


def record(config, **row):
    """One row of the report (FIELDS): the session's ALPHA and seeds are added here."""
    s = seeds(config)
    row.update(alpha=alpha(config), seed_mode=s.mode, master_seed=s.master)
    config.stash.setdefault(_ROWS, []).append(row)


@pytest.fixture
def stat_record(request):
    """``stat_record(**row)``: one CSV row of the report (FIELDS), this session's ALPHA and seeds."""
    return lambda **row: record(request.config, nodeid=request.node.nodeid, **row)


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
    from reference.conformance.stats import budget

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
