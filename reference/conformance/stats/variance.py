"""Variance: Var[y] = x**2 p / (1 - p).

The statistic is the sample variance S2 of r = y / x (ddof=1). Under the contract
r = s Bernoulli(q), so S2 = s**2 K (n - K) / (n (n - 1)) with K ~ Binomial(n, q): the
two-sided p-value P(|S2' - V| >= |S2 - V|), V = p / (1 - p), is summed exactly over the
binomial distribution (no normal approximation; at p = 0.5, where S2 is maximal and
a normal approximation would degenerate, it is still exact). Forward and mean tests share
the sample (label ``moments/p=...``): two statistics of one sample, fine under Bonferroni.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

from . import budget
from .sampling import Probe, fmt_p, forward_ratio, keep_prob, scale, sizes


def variance_pvalue(r: np.ndarray, p: float, dtype=np.float32) -> float:
    n = r.size
    v_obs = float(np.var(r, ddof=1, dtype=np.float64))
    if not math.isfinite(v_obs):
        return 0.0
    s, q = scale(p, dtype), keep_prob(p)
    target = p / (1.0 - p)
    d = abs(v_obs - target) - 2.0**-21 * max(v_obs, target)  # float32 rounding of y = x s
    if d <= 0:
        return 1.0
    sd = math.sqrt(n * q * (1 - q))
    lo, hi = max(0, math.floor(n * q - 40 * sd - 10)), min(n, math.ceil(n * q + 40 * sd + 10))
    k = np.arange(lo, hi + 1, dtype=np.float64)
    f = s * s * k * (n - k) / (n * (n - 1.0))
    pv = float(stats.binom.pmf(k, n, q)[np.abs(f - target) >= d].sum())
    pv += float(stats.binom.cdf(lo - 1, n, q) + stats.binom.sf(hi, n, q))  # outside: count all
    return min(1.0, pv)


def check_variance(impl, *, n, p, seed, offset) -> float:
    return variance_pvalue(forward_ratio(impl, n, p, seed, offset), p)


def _probe(p):
    def run(impl, n, seeds):
        seed, offset = seeds(f"moments/p={fmt_p(p)}")
        r = forward_ratio(impl, n, p, seed, offset)
        return variance_pvalue(r, p), {"observed": float(np.var(r, ddof=1, dtype=np.float64)),
                                       "expected": p / (1.0 - p)}
    sim = budget.N_SIM if p in budget.SIM_MOMENT_P else None
    return Probe(f"variance/p={fmt_p(p)}", p, sizes(budget.N_MAIN, sim=sim), run,
                 doc="Var[y/x] = p/(1-p); sample variance, exact binomial null")


def probes():
    for p in budget.MOMENT_P:
        yield _probe(p)
