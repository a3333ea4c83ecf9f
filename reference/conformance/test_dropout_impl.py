"""The conformance checks as pytest tests: collected by ``pytest --dropout-impl IMPL``
(reference/conformance/plugin.py), one test per check of the plan; the same runner as dropout-check."""

from __future__ import annotations

import warnings

import pytest

from reference.conformance.runner import execute


def test_dropout_check(dropout_check, dropout_plan, stat_seeds, stat_record):
    res = execute(dropout_check, dropout_plan, stat_seeds)
    if res.p_value is not None:
        stat_record(test=res.name, backend=dropout_plan.impl.name, n=res.n, p=dropout_check.probe.p,
                    p_value=res.p_value, passed=bool(res.passed), expect="pass",
                    simulated=dropout_plan.impl.simulated)
    if res.status == "not supported":
        pytest.skip(res.detail)
    if res.status == "note":  # not a failure at this level, but a reader must see it
        warnings.warn(f"{res.name}: note: {res.detail}", stacklevel=1)
    assert res.passed, (f"{res.name}: {res.status}: {res.detail}"
                        + (f"; p-value {res.p_value:.3g} < ALPHA {res.alpha:.3g} (n={res.n}); replay with "
                           f"--stat-seed={stat_seeds.master}" if res.p_value is not None else ""))
