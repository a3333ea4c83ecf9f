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
from scipy import stats

from . import budget
from .sampling import Probe, backward_ratio, fmt_p, forward_ratio, keep_prob, scale, sizes, x_signed

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
    return mean_pvalue(ratios_over_seeds(impl, k=k, p=p, seed=seed, offset=offset, backward=backward), p)


def ratios_over_seeds(impl, *, k, p, seed, offset, backward=False) -> np.ndarray:
    """y/x of the fixed element over seeds seed .. seed+k-1."""
    x = x_signed(SWEEP_SIZE)
    r = np.empty(k)
    for j in range(k):
        if backward:
            y = impl.backward(x, p, seed=seed + j, offset=offset)
        else:
            y, _ = impl.forward(x, p, seed=seed + j, offset=offset)
        r[j] = float(y[SWEEP_ELEMENT]) / float(x[SWEEP_ELEMENT])
    return r


def _kw(seeds, label):
    seed, offset = seeds(label)
    return {"seed": seed, "offset": offset}


def _sz(p, ps, n=budget.N_MAIN, sim=budget.N_SIM):
    return sizes(n, sim=sim if p in ps else None)


def _observed(r, p):
    """What a failure prints: the mean of y/x against 1 (and the keep probability and scale it implies)."""
    return {"observed": float(np.mean(r, dtype=np.float64)), "expected": 1.0,
            "scale_seen": float(np.max(r)) if r.size else float("nan")}


def _forward(p):
    def run(impl, n, seeds):
        kw = _kw(seeds, f"moments/p={fmt_p(p)}")
        r = forward_ratio(impl, n, p, **kw)
        return mean_pvalue(r, p), _observed(r, p)
    return Probe(f"mean_forward/p={fmt_p(p)}", p, _sz(p, budget.SIM_MOMENT_P), run,
                 doc="E[y] = x: mean of y/x over n elements is 1; exact binomial null")


def _backward(p, source):
    label = f"mean_backward_{source}/p={fmt_p(p)}"

    def run(impl, n, seeds):
        r = backward_ratio(impl, n, p, source=source, **_kw(seeds, label))
        return mean_pvalue(r, p), _observed(r, p)
    needs = ("backward", "regenerate") if source == "regenerate" else (f"mask:{source}",)
    return Probe(label, p, _sz(p, budget.SIM_MOMENT_P), run, needs=needs,
                 doc=f"E[grad_x] = grad_y, mask {'regenerated' if source == 'regenerate' else 'stored as ' + source}")


def _sweep(p, backward):
    label = f"mean_seeds_{'backward' if backward else 'forward'}/p={fmt_p(p)}"

    def run(impl, k, seeds):
        r = ratios_over_seeds(impl, k=k, p=p, backward=backward, **_kw(seeds, label))
        return mean_pvalue(r, p), _observed(r, p)
    sim = budget.SWEEP_K_SIM if not backward and p in budget.SIM_SWEEP_FORWARD_P else None
    return Probe(label, p, sizes(budget.SWEEP_K, sim=sim), run,
                 needs=("backward", "regenerate") if backward else (),
                 doc="one fixed element over k consecutive seeds: E[y] = x")


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
