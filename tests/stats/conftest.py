"""Fixtures of the statistical battery: seeds, the judge, and the report.

* ``stat_seeds``: a :class:`~tests.stats.sampling.Seeds` from ``--stat-seed`` ('fixed':
  budget.FIXED_MASTER_SEED; 'random': a fresh master seed, printed in the terminal summary
  and in every failure message; an integer: replay that master seed).
* ``judge(probe, impl)``: runs one hypothesis, records it, and fails when p < ALPHA.
* ``DROPOUT_STATS_REPORT=<path>``: append one CSV row per judged hypothesis to <path>
  (render with ``python -m tests.stats.report <path>``).
"""

from __future__ import annotations

import csv
import os
import secrets

import pytest

from . import budget
from .sampling import Seeds

_ROWS = pytest.StashKey[list]()
_SEEDS = pytest.StashKey[Seeds]()

REPORT_ENV = "DROPOUT_STATS_REPORT"
FIELDS = ("test", "backend", "n", "p", "p_value", "alpha", "passed", "expect",
          "seed_mode", "master_seed", "simulated", "nodeid")


def _seeds(config) -> Seeds:
    if _SEEDS not in config.stash:
        opt = str(config.getoption("--stat-seed", default="fixed")).strip().lower()
        if opt == "fixed":
            s = Seeds(budget.FIXED_MASTER_SEED, "fixed")
        elif opt == "random":
            s = Seeds(secrets.randbits(63), "random")
        else:
            try:
                s = Seeds(int(opt, 0), "given")
            except ValueError:
                raise pytest.UsageError(f"--stat-seed must be 'fixed', 'random' or an integer, got {opt!r}")
        config.stash[_SEEDS] = s
        if s.mode == "random":  # visible with -s; the terminal summary repeats it
            print(f"\n[stats] fresh master seed {s.master}: replay with --stat-seed={s.master}")
    return config.stash[_SEEDS]


def _rows(config) -> list:
    return config.stash.setdefault(_ROWS, [])


@pytest.fixture(scope="session")
def stat_seeds(request) -> Seeds:
    return _seeds(request.config)


@pytest.fixture
def stream_level(request):
    """Stream-level hypotheses (no backend) run once, in the run that includes the reference."""
    chosen = request.config.getoption("--backend")
    if chosen and "reference" not in chosen:
        pytest.skip("stream-level test: runs in the battery that includes --backend reference")
    import reference.dropout
    return reference.dropout


def record(config, *, test, backend, n, p, p_value, expect, nodeid="", simulated=False):
    seeds = _seeds(config)
    passed = (p_value >= budget.ALPHA) if expect == "pass" else (p_value < budget.ALPHA)
    _rows(config).append({
        "test": test, "backend": backend, "n": n, "p": p, "p_value": p_value,
        "alpha": budget.ALPHA, "passed": passed, "expect": expect,
        "seed_mode": seeds.mode, "master_seed": seeds.master, "simulated": simulated,
        "nodeid": nodeid,
    })
    return passed


@pytest.fixture
def judge(request, stat_seeds):
    """``judge(probe, impl)``: run one hypothesis at the impl's size, record it, assert p >= ALPHA."""

    def _judge(probe, impl, backend_name=None):
        if budget.simulated(impl) and probe.n_sim is None:
            pytest.skip("too slow for the CUDA simulator: the reference and cpu runs cover it at full "
                        "size, and cuda reproduces the reference bit for bit (test_reference_agreement)")
        if "slow" in probe.family and budget.simulated(impl):
            pytest.skip("slow sizes are for CPU backends")
        pv, n = probe(impl, stat_seeds)
        name = backend_name or ("stream" if probe.family == "ks_words" else impl.NAME)
        record(request.config, test=probe.label, backend=name, n=n, p=probe.p, p_value=pv,
               expect="pass", nodeid=request.node.nodeid, simulated=budget.simulated(impl))
        assert pv >= budget.ALPHA, (
            f"{probe.label} on {name}: p-value {pv:.3g} < ALPHA {budget.ALPHA:.3g} (n={n}); "
            f"master seed {stat_seeds.master} ({stat_seeds.mode}): replay with --stat-seed={stat_seeds.master}"
        )
        return pv

    return _judge


def pytest_sessionfinish(session, exitstatus):
    rows = session.config.stash.get(_ROWS, [])
    if not rows:
        return
    path = os.environ.get(REPORT_ENV)
    if path:
        new = not os.path.exists(path) or os.path.getsize(path) == 0
        with open(path, "a", newline="") as f:
            w = csv.DictWriter(f, fieldnames=FIELDS)
            if new:
                w.writeheader()
            w.writerows(rows)
    judged = {(r["test"], r["backend"]) for r in rows if r["expect"] == "pass"}
    if len(judged) > budget.COUNT:  # the budget would no longer bound the false-alarm rate
        session.config.stash[_OVER] = len(judged)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


_OVER = pytest.StashKey[int]()


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    rows = config.stash.get(_ROWS, [])
    if not rows:
        return
    seeds = _seeds(config)
    tr = terminalreporter
    tr.section("statistical battery")
    judged = [r for r in rows if r["expect"] == "pass"]
    failed = [r for r in judged if not r["passed"]]
    tr.write_line(
        f"master seed {seeds.master} ({seeds.mode}); replay: --stat-seed={seeds.master}; "
        f"{len(judged)} hypotheses judged at ALPHA = {budget.FAMILY_ALPHA:g}/{budget.COUNT} = "
        f"{budget.ALPHA:.3g}, {len(failed)} rejected"
    )
    if _OVER in config.stash:
        tr.write_line(f"ERROR: {config.stash[_OVER]} distinct hypotheses judged, more than "
                      f"budget.COUNT = {budget.COUNT}: update tests/stats/budget.py", red=True)
    if os.environ.get(REPORT_ENV):
        tr.write_line(f"rows appended to {os.environ[REPORT_ENV]}")
