"""Power, shown: every mutant of reference/conformance/mutants.py is caught by its designated
checks (mutants.CATCHERS), run exactly as dropout-check runs them (same runner, seeds, sizes,
and the ALPHA of a full statistical-level run). Not false-alarm hypotheses: rejection is
the expected outcome, so they are outside the session's budget."""

from __future__ import annotations

import pytest

from reference.conformance.mutants import CATCHERS, CORRECT, MUTANTS, matrix
from reference.conformance.runner import execute, plan
from reference.conformance.stats import budget


def _catchers(mutant):
    pl = plan(mutant, mutant.level)  # the full plan's ALPHA, as dropout-check would use (contract: claims our stream)
    by_name = {c.name: c for c in pl.checks}
    return pl, [by_name[n] for n in CATCHERS[mutant.name]]


def test_catchers_are_checks():
    assert set(CATCHERS) == {m.name for m in MUTANTS}
    for m in MUTANTS:
        _catchers(m)  # KeyError when a catcher is not a check of the mutant's level


@pytest.mark.parametrize("mutant", MUTANTS, ids=lambda m: m.name)
def test_mutant_is_caught(mutant, stat_seeds, stat_record):
    pl, catchers = _catchers(mutant)
    results = [execute(c, pl, stat_seeds) for c in catchers]
    for c, r in zip(catchers, results):
        if r.p_value is not None:
            stat_record(test=r.name, backend=f"mutant:{mutant.name}", n=r.n, p=c.probe.p,
                        p_value=r.p_value, passed=r.passed is False, expect="reject", simulated=False)
    assert any(r.passed is False for r in results), (
        f"{mutant.name} ({mutant.bug}) escaped its catchers: "
        + "; ".join(f"{r.name}: {r.status} p={r.p_value}" for r in results)
        + f"; replay with --stat-seed={stat_seeds.master}")


def test_bug_free_scaffold_matches_reference(stat_seeds):
    """The mutants' NumPy scaffold without a bug gives the reference's p-values exactly on
    every statistical catcher (same masks), so a mutant is caught for its bug, not its plumbing."""
    from reference.conformance.loader import load

    pl, ref = plan(CORRECT, "statistical"), load("reference")
    by_name = {c.name: c for c in pl.checks}
    for name in sorted({n for ns in CATCHERS.values() for n in ns if n in by_name}):
        c = by_name[name]
        if c.probe is not None:
            assert c.probe(CORRECT, stat_seeds) == c.probe(ref, stat_seeds), name


@pytest.mark.slow
def test_full_detection_matrix(stat_seeds):
    """Every check on every mutant: each mutant fails at least one, the scaffold none."""
    runs = matrix(stat_seeds)
    for name, run in runs.items():
        failed = [r.name for r in run.results if r.passed is False]
        assert bool(failed) == (name != CORRECT.name), (name, failed)
    assert budget.FAMILY_ALPHA == 1e-4
