"""Mean preservation: E[y] = x (inverted dropout), forward and backward.

The statistic is the sample mean T of r = y / x. Its null distribution is exact: under the
contract r is 0 or the scale s (1/(1-p) rounded to the dtype), so T = s K / n with
K ~ Binomial(n, q); the two-sided p-value is P(|s K'/n - 1| >= |T - 1|), summed exactly
from the binomial distribution (no normal approximation, valid at any n). A slack of
2**-22 (1 + |T|) absorbs the float32 rounding of y = x s (conservative).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from . import budget
from .sampling import Probe, backward_ratio, fmt_p, forward_ratio, keep_prob, scale, x_signed

SWEEP_SIZE = 8       # elements per call in the seed sweep
SWEEP_ELEMENT = 5    # the fixed element (lane 1 of the second block for an aligned offset)


def mean_pvalue(r: np.ndarray, p: float, dtype=np.float32) -> float:
    """Exact two-sided p-value of ``mean(r) = 1`` under ``r = s * Bernoulli(q)``."""
    n = r.size
    t = float(np.mean(r, dtype=np.float64))
    if not math.isfinite(t):
        return 0.0
    s, q = scale(p, dtype), keep_prob(p)
    d = abs(t - 1.0) - 2.0**-22 * (1.0 + abs(t))
    if d <= 0:
        return 1.0
    lo = math.floor(n * (1.0 - d) / s)   # K' <= lo  gives  s K'/n - 1 <= -d
    hi = math.ceil(n * (1.0 + d) / s)    # K' >= hi  gives  s K'/n - 1 >= d
    pv = (stats.binom.cdf(lo, n, q) if lo >= 0 else 0.0) + stats.binom.sf(hi - 1, n, q)
    return float(min(1.0, pv))


def check_mean_forward(impl, *, n, p, seed, offset) -> float:
    return mean_pvalue(forward_ratio(impl, n, p, seed, offset), p)


def check_mean_backward(impl, *, n, p, seed, offset, source) -> float:
    return mean_pvalue(backward_ratio(impl, n, p, seed, offset, source), p)


def check_mean_over_seeds(impl, *, k, p, seed, offset, backward=False) -> float:
    """One fixed element (index SWEEP_ELEMENT of an 8-element tensor), seeds seed .. seed+k-1."""
    x = x_signed(SWEEP_SIZE)
    r = np.empty(k)
    for j in range(k):
        if backward:
            y = impl.dropout_backward(x, p, seed=seed + j, offset=offset)
        else:
            y, _ = impl.dropout_forward(x, p, seed=seed + j, offset=offset, mask_format=None)
        r[j] = float(np.asarray(y)[SWEEP_ELEMENT]) / float(x[SWEEP_ELEMENT])
    return mean_pvalue(r, p)


def _forward(p):
    def run(impl, n, seeds):
        return check_mean_forward(impl, n=n, p=p, **_kw(seeds, f"moments/p={fmt_p(p)}"))
    return Probe(f"mean_forward/p={fmt_p(p)}", p, budget.N_MAIN, _sim(p, budget.SIM_MOMENT_P), run)


def _backward(p, source):
    label = f"mean_backward_{source}/p={fmt_p(p)}"

    def run(impl, n, seeds):
        return check_mean_backward(impl, n=n, p=p, source=source, **_kw(seeds, label))
    return Probe(label, p, budget.N_MAIN, _sim(p, budget.SIM_MOMENT_P), run)


def _sweep(p, backward):
    label = f"mean_seeds_{'backward' if backward else 'forward'}/p={fmt_p(p)}"

    def run(impl, k, seeds):
        return check_mean_over_seeds(impl, k=k, p=p, backward=backward, **_kw(seeds, label))
    sim = None if backward or p not in budget.SIM_SWEEP_FORWARD_P else budget.SWEEP_K_SIM
    return Probe(label, p, budget.SWEEP_K, sim, run)


def _kw(seeds, label):
    seed, offset = seeds(label)
    return {"seed": seed, "offset": offset}


def _sim(p, ps):
    return budget.N_SIM if p in ps else None


def probes():
    for p in budget.MOMENT_P:
        yield _forward(p)
    for p in budget.MOMENT_P:
        yield _backward(p, "regenerate")
        yield _backward(p, "bits")
    for p in budget.SWEEP_FORWARD_P:
        yield _sweep(p, backward=False)
    for p in budget.SWEEP_BACKWARD_P:
        yield _sweep(p, backward=True)


_ALL = list(probes())


@pytest.mark.parametrize("probe", [pr for pr in _ALL if pr.family == "mean_forward"], ids=lambda pr: pr.label)
@budget.documented
def test_mean_forward(backend, probe, judge):
    """H0: E[y] = x, i.e. r = y/x has mean 1 (r = s Bernoulli(q)), p in {MOMENT_P}.
    x = +-U[0.5, 2) float32. Statistic: sample mean of r over n elements, exact binomial
    null (module docstring). Sample: n = {N_MAIN} consecutive elements ({N_SIM} under the
    CUDA simulator, p = 0.5 only). Level: ALPHA = {ALPHA:.3g} (budget.py).
    """
    judge(probe, backend)


@pytest.mark.parametrize("probe", [pr for pr in _ALL if pr.family.startswith("mean_backward")],
                         ids=lambda pr: pr.label)
@budget.documented
def test_mean_backward(backend, probe, judge):
    """H0: E[grad_x] = grad_y, with the mask regenerated from (seed, offset) or read from the
    forward call's stored "bits" mask; p in {MOMENT_P}. Statistic: sample mean of
    grad_x / grad_y, exact binomial null. Sample: n = {N_MAIN} ({N_SIM} under the CUDA
    simulator, p = 0.5 only). Level: ALPHA = {ALPHA:.3g} (budget.py).
    """
    judge(probe, backend)


@pytest.mark.parametrize("probe", [pr for pr in _ALL if pr.family.startswith("mean_seeds")],
                         ids=lambda pr: pr.label)
@budget.documented
def test_mean_over_seeds(backend, probe, judge):
    """H0: for one fixed element (index 5 of an 8-element tensor, fixed offset), E[y] = x
    over the seeds seed, seed+1, ..., seed+k-1 (forward p in {SWEEP_FORWARD_P}, backward
    p in {SWEEP_BACKWARD_P}). Statistic: mean of y/x over the k calls, exact binomial null.
    Sample: k = {SWEEP_K} seeds ({SWEEP_K_SIM} under the CUDA simulator, forward p = 0.5).
    Level: ALPHA = {ALPHA:.3g} (budget.py).
    """
    judge(probe, backend)
