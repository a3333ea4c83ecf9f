"""The theory claims (reference/conformance/theory.py, docs/THEORY.md) at quick sizes: they hold on
our backends, fail on the broken implementations built for them, and the worked examples are exact."""

from __future__ import annotations

import math

import numpy as np
import pytest

from reference.conformance import loader, theory
from reference.conformance.mutants import BY_NAME
from reference.conformance.stats.sampling import Seeds

SEEDS = Seeds(0x7E0_2023, "given")


@pytest.fixture(scope="module", params=["reference", "cpu"])
def backend_run(request):
    return theory.run(loader.load(request.param), SEEDS, quick=True)


def test_backends_pass(backend_run):
    failed = [(r.name, r.detail) for r in backend_run.results if r.passed is not True]
    assert not failed, failed
    assert backend_run.hypotheses == theory.hypothesis_count(backend_run.impl, quick=True) == 16
    for r in backend_run.results:
        if r.kind == "statistical":
            assert r.p_value is not None and r.alpha == backend_run.alpha and r.effect


@pytest.fixture(scope="module")
def pairs_run():
    names = ["theory/3_*", "theory/4_*", "theory/1_*", "theory/5_*", "theory/6_*"]
    return {r.name: r for r in theory.run(theory.PAIRS_SHARE_DECISION, SEEDS, quick=True, names=names).results}


def test_pairs_mutant_fails_claims_3_and_4(pairs_run):
    for name in theory.PAIRS_CATCHERS + ("theory/3_mc_dropout/p=0.2", "theory/4_adaptive_l2/p=0.2"):
        r = pairs_run[name]
        assert r.passed is False, (name, r.detail)
        assert "observed" in r.detail and "expected" in r.detail and "%" in r.detail


def test_pairs_mutant_keeps_the_marginal_claims(pairs_run):
    # each element's keep rate is right: the claims about one element (1) and expectations of
    # independent layers (6) or moments given x (5) do not see it
    for name, r in pairs_run.items():
        if name.startswith(("theory/1_", "theory/5_", "theory/6_")):
            assert r.passed is True, (name, r.detail)


def test_pairs_mutant_keep_rate_right():
    y, _ = theory.as_impl(theory.PAIRS_SHARE_DECISION).forward(np.ones(2**16, np.float32), 0.5, seed=3)
    kept = y != 0
    assert abs(kept.mean() - 0.5) < 0.01
    assert np.array_equal(kept[0::2], kept[1::2])


def test_no_scale_fails_claim_1():
    tr = theory.run(BY_NAME["no_scale"], SEEDS, quick=True, names=["theory/1_*"])
    assert tr.verdict == "fail"
    r = tr.results[1]  # p = 0.5: E[y] = x/2
    assert r.passed is False and r.p_value < 1e-100
    assert "difference mean -49." in r.detail or "difference mean -50" in r.detail, r.detail


def test_wrong_formula_scale_1_over_p_fails_claim_1():
    tr = theory.run(BY_NAME["scale_1_over_p"], SEEDS, quick=True, names=["theory/1_*/p=0.1"])
    assert tr.results[0].passed is False


@pytest.mark.parametrize("name", ["reference", "cpu"])
def test_claim8_exact_values(name):
    impl = loader.load(name)
    ok, msg = theory.nn_dropout_example(impl, SEEDS)
    assert ok, msg
    assert "5.5556, 7.7778, 10.0000" in msg
    ok, msg = theory.textbook_example(impl, SEEDS)
    assert ok, msg
    # the formula itself: float32(x) * float32(1/0.9), one rounding, 9 * scale is a tie to 10.0
    expect = np.array([5, 7, 9], np.float32) * np.float32(1 / 0.9)
    assert [f"{v:.4f}" for v in expect] == ["5.5556", "7.7778", "10.0000"]
    assert expect[2] == np.float32(10.0)
    x = np.arange(16, dtype=np.float32).reshape(2, 8)
    for p, want in ((0.0, x), (1.0, np.zeros_like(x))):
        y, _ = impl.forward(x, p, seed=11)
        assert np.array_equal(y, want)
    y, _ = impl.forward(x, 0.5, seed=11)
    assert np.all((y == 0) | (y == 2 * x))


def test_claim8_catches_a_wrong_scale():
    ok, msg = theory.nn_dropout_example(theory.as_impl(BY_NAME["no_scale"]), SEEDS)
    assert not ok and "bit for bit" in msg


def test_formulas():
    # claim 5: the BN offset vanishes at q = 1 and matches a direct computation
    f = theory.bn_formula(1.0, 0.25, 1.0)
    assert f["offset_classic"] == 0.0
    q = 0.5
    f = theory.bn_formula(1.0, 0.25, q)
    assert math.isclose(f["offset_classic"], 1.0 * 0.5 / math.sqrt(0.5 * 0.25 + 0.25 + 1e-5))
    assert math.isclose(f["var_ratio_inverted"], 0.25 / (0.25 / q + 1.0 + 1e-5))
    # claim 7: the Brier identity is exact for any votes; the quoted majority form is not
    task = theory.ensemble_task()
    rng = np.random.default_rng(0)
    pred = rng.integers(0, 3, (50, 4, task.X.shape[0]))
    st = theory.ensemble_stats(task, pred)
    assert st["identity_max_err"] < 1e-12
    assert np.abs((st["E_ind"] - st["E_mv"]) - 3 / 8 * st["D"]).max() > 0.01
    # lattice p-value: exact binomial tail
    assert theory.lattice_pvalue(0.5, 100, 0.5, 0.0, 1.0, 0.5, 0.0) == 1.0
    assert theory.lattice_pvalue(0.9, 100, 0.5, 0.0, 1.0, 0.5, 0.0) < 1e-10


def test_budget_keys_shared_by_stream_backends():
    keys_ref = theory.hypothesis_keys(loader.load("reference"), quick=False)
    keys_cpu = theory.hypothesis_keys(loader.load("cpu"), quick=False)
    assert set(keys_ref) == set(keys_cpu)  # one stream: the same events
    from reference.conformance.stats import budget

    assert budget.alpha_for(keys_ref + keys_cpu) == budget.FAMILY_ALPHA / 16


def test_report_quick(tmp_path):
    from reference.conformance import theory_report

    assert theory_report.main(["--quick", "--impls", "reference", "--out", str(tmp_path)]) == 0
    for k in range(1, 9):
        assert (tmp_path / f"claim{k}.png").exists()
    text = (tmp_path / "summary.md").read_text()
    assert "theory/8_examples" in text and "**FAIL" not in text
