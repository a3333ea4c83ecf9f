"""Issue 21 items 6 and 5, issue 20: failures that explain themselves, the within-word sharing
check and its mutant, the --quick report directory, a seedless callable refused clearly."""

from __future__ import annotations

import numpy as np
import pytest

from reference.conformance import cli, mutants, runner
from reference.conformance.loader import load, wrap
from reference.conformance.stats import budget
from reference.conformance.stats.byte_sharing import byte_sharing_pvalue
from reference.conformance.stats.sampling import Seeds


def _one(impl, name, seeds, level="statistical"):
    pl = runner.plan(impl, level, names=[name])
    (check,) = pl.checks
    return runner.execute(check, runner.Plan(pl.impl, pl.level, pl.mode, pl.checks, pl.skipped,
                                             runner.plan(impl, level).alpha), seeds)


def test_byte_rotations_caught_and_reference_passes():
    for s in (1, 2):
        seeds = Seeds(100 + s, "random")
        r = _one(mutants.byte_rotations, "byte_sharing/lags=1..3", seeds)
        assert r.passed is False and r.p_value < 1e-100, r
        assert "byte" in r.cause
        ok = _one(load("reference"), "byte_sharing/lags=1..3", seeds, "contract")
        assert ok.passed, ok


def test_byte_sharing_null_is_calibrated():
    """Independent elements: the p-value is (conservatively) uniform: few below 0.01."""
    rng = np.random.default_rng(5)
    pvs = []
    for _ in range(100):
        pvs.append(byte_sharing_pvalue(rng.random(2**18) < 2.0**-11, rng.random(2**18) < 2.0**-8)[0])
    assert np.mean(np.asarray(pvs) < 0.01) <= 0.03


def test_budget_counts_the_new_hypothesis():
    pl = runner.plan(load("reference"), "contract")
    assert pl.hypotheses == 69
    assert pl.alpha == pytest.approx(budget.FAMILY_ALPHA / 69)


def test_failures_state_observed_expected_effect_and_cause():
    seeds = Seeds(budget.FIXED_MASTER_SEED, "fixed")
    r = _one(mutants.no_scale, "mean_forward/p=0.5", seeds)
    assert r.passed is False and "0.5" in r.observed and r.expected == "1" and "% of E[y]" in r.effect_size
    assert "scale 1/(1-p) forgotten" in r.cause
    r = _one(mutants.half_scale_rounded, "half_mean/float16/p=0.01", seeds)
    assert r.passed is False and "ulp of the kept value" in r.effect_size and "second rounding" in r.cause
    r = _one(mutants.threshold_from_p, "keep_rate/p=0.1", seeds)
    assert "keep-rate points" in r.effect_size and "against p" in r.cause
    r = _one(mutants.ignores_offset, "cross_call/offset+n", seeds)
    assert "offset ignored" in r.cause


def test_one_root_cause_one_headline():
    from reference.conformance.explain import headlines

    run = runner.run(mutants.no_scale, "statistical", names=["mean_forward/*", "mean_backward_*"])
    heads = headlines(run.results)
    assert len(heads) == 1 and len(heads[0][1]) == 9, heads


def test_refused_dtype_is_not_supported_not_an_error():
    def f(x, p, seed):
        if x.dtype == np.float64:
            raise TypeError("float64 not supported")
        rng = np.random.default_rng(seed)
        return np.where(rng.random(x.shape) >= p, x / (1 - p), 0).astype(x.dtype) if p < 1 else np.zeros_like(x)

    impl = wrap(f)
    from dataclasses import replace
    impl.capabilities = replace(impl.capabilities, dtypes=("float32", "float64"))  # declared, then refused
    run = runner.run(impl, "statistical", quick=True, names=["semantic/*"])
    assert not [r for r in run.results if r.status == "error"], [(r.name, r.detail) for r in run.results]
    assert "float64" in impl.refused


def test_quick_never_overwrites_a_committed_report():
    assert cli.default_out("reference", quick=True) == "reports/_scratch/conformance/reference"
    assert cli.default_out("reference", quick=False) == "reports/conformance/reference"


def test_seedless_callable_is_checked_in_stateful_mode():
    from reference.conformance.protocol import from_callable

    def stateful(x, p):
        return x

    assert wrap(stateful).capabilities.stateful
    with pytest.raises(TypeError, match="stateful"):  # from_callable itself still needs f(x, p, seed)
        from_callable(stateful)
