"""Power, shown: every mutant kernel of mutants.py is caught by a statistical probe of the
battery (the same probe functions, seeds and CI sample sizes as the backend tests)."""

from __future__ import annotations

import pytest

from . import battery, budget
from .conftest import record
from .mutants import CATCHERS, CORRECT, MUTANTS, matrix

PROBES = battery.by_label()


def test_catchers_are_battery_probes():
    assert set(CATCHERS) == {m.name for m in MUTANTS}
    for labels in CATCHERS.values():
        for label in labels:
            assert label in PROBES and PROBES[label].statistical, label


@pytest.mark.parametrize("mutant", MUTANTS, ids=lambda m: m.name)
@budget.documented
def test_mutant_is_caught(stream_level, mutant, stat_seeds, request):
    """H1: the mutant violates the contract. It must be rejected (p < ALPHA = {ALPHA:.3g})
    by at least one of its designated probes (mutants.CATCHERS), run exactly as on the real
    backends (n = {N_MAIN}, or {N_EXTREME} for the extreme-p keep rate). Every row is
    recorded in the report with expect = reject.
    """
    results = {}
    for label in CATCHERS[mutant.name]:
        probe = PROBES[label]
        pv, n = probe(mutant, stat_seeds)
        results[label] = pv
        record(request.config, test=label, backend=mutant.NAME, n=n, p=probe.p, p_value=pv,
               expect="reject", nodeid=request.node.nodeid)
    assert min(results.values()) < budget.ALPHA, (
        f"{mutant.name} ({mutant.bug}) escaped its catchers: {results}; "
        f"replay with --stat-seed={stat_seeds.master}")


def test_bug_free_scaffold_matches_reference(stream_level, stat_seeds):
    """The mutants' NumPy scaffold without a bug gives the reference's p-values exactly on
    every catcher probe (same masks), so a mutant is caught for its bug, not its plumbing.
    Not a new hypothesis: the same events as the reference's own tests."""
    import reference.dropout as ref

    for label in sorted({lab for labs in CATCHERS.values() for lab in labs}):
        probe = PROBES[label]
        assert probe(CORRECT, stat_seeds) == probe(ref, stat_seeds), label


@pytest.mark.slow
def test_full_detection_matrix(stream_level, stat_seeds):
    """Every probe on every mutant (several minutes): each mutant is rejected by at least
    one probe at ALPHA, and the bug-free scaffold by none."""
    m = matrix(stat_seeds)
    for mu in [CORRECT, *MUTANTS]:
        rejected = [lab for lab, row in m.items() if row[mu.name] < budget.ALPHA]
        if mu is CORRECT:
            assert not rejected, rejected
        else:
            assert rejected, mu.name
