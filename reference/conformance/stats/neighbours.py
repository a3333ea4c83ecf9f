"""Independence between neighbours: the decisions of positions g and g + L are independent.

For each lag L, a 2 x 2 contingency table of (kept at i, kept at i + L) over all
n - L overlapping pairs, and Pearson's chi-square test of independence (no continuity
correction, df = 1). Under H0 (an i.i.d. Bernoulli sequence) the overlapping pairs make
the products (m_i - q)(m_{i+L} - q) uncorrelated, not independent; the statistic
n_pairs * phi**2 (phi the table's correlation) is still asymptotically chi-square(1)
(CLT for m-dependent sequences). The "cross-block" table uses only the disjoint lag-1
pairs (g, g + 1) with g = 3 mod 4, i.e. last word of a block next to the first of the next.

Periodicity: the autocorrelation of the centred mask at *every* lag 1 .. MAX_PERIOD at once
(one FFT); z_L = r_L n / sqrt(n - L) is N(0, 1) under H0, and the p-value of max |z_L| is
Bonferroni over the lags (conservative). A stream that repeats with any period up to
MAX_PERIOD = 2**16 elements (a recycled table, a wrapping 16-bit index) has r_L = 1 there.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from . import budget
from .sampling import Probe, fmt_p, keep_mask, sizes


def pair_pvalue(a: np.ndarray, b: np.ndarray) -> float:
    n11 = int(np.count_nonzero(a & b))
    n10 = int(np.count_nonzero(a)) - n11
    n01 = int(np.count_nonzero(b)) - n11
    n00 = a.size - n11 - n10 - n01
    table = np.array([[n11, n10], [n01, n00]])
    if (table.sum(axis=0) == 0).any() or (table.sum(axis=1) == 0).any():
        return 1.0
    return float(stats.chi2_contingency(table, correction=False).pvalue)


def pair_phi(a: np.ndarray, b: np.ndarray) -> float:
    """The correlation of two bool arrays (0 under independence): a failure's effect size."""
    a, b = a.astype(np.float64), b.astype(np.float64)
    sa, sb = a.std(), b.std()
    return float(((a - a.mean()) * (b - b.mean())).mean() / (sa * sb)) if sa > 0 and sb > 0 else 0.0


def check_lag(impl, *, n, p, seed, offset, lag) -> float:
    kept = keep_mask(impl, n, p, seed, offset)
    return pair_pvalue(kept[:-lag], kept[lag:])


def check_cross_block(impl, *, n, p, seed, offset) -> float:
    kept = keep_mask(impl, n, p, seed, offset)
    first = (3 - offset) % 4            # index of the first element on lane 3
    i = np.arange(first, n - 1, 4)
    return pair_pvalue(kept[i], kept[i + 1])


def max_lagged_correlation(a, b, max_lag: int) -> tuple[float, float, int]:
    """``(p-value, correlation, lag)`` of the largest |z| of a[i + L] against b[i] over
    L = 1 .. max_lag (one FFT; Bonferroni over the lags): a with itself is the periodicity
    check, two calls of one generator the successive-call shift check."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    n = a.size
    ac, bc = a - a.mean(), b - b.mean()
    scale = float(np.sqrt((ac @ ac) * (bc @ bc)))
    if scale == 0:
        return 1.0, 0.0, 0
    max_lag = min(max_lag, n // 2)
    r = np.fft.irfft(np.fft.rfft(ac, 2 * n) * np.conj(np.fft.rfft(bc, 2 * n)), 2 * n)[1:max_lag + 1] / scale
    lags = np.arange(1, max_lag + 1)
    z = np.abs(r) * n / np.sqrt(n - lags)
    k = int(np.argmax(z))
    return float(min(1.0, max_lag * 2 * stats.norm.sf(z[k]))), float(r[k] * n / (n - lags[k])), int(lags[k])


def check_periodicity(impl, *, n, p, seed, offset, max_lag) -> float:
    kept = keep_mask(impl, n, p, seed, offset)
    return max_lagged_correlation(kept, kept, max_lag)[0]


def _lag(p, lag):
    def run(impl, n, seeds):
        seed, offset = seeds(f"mask/p={fmt_p(p)}")
        pv = check_lag(impl, n=n, p=p, seed=seed, offset=offset, lag=lag)
        kept = keep_mask(impl, n, p, seed, offset)
        return pv, {"observed": pair_phi(kept[:-lag], kept[lag:]), "expected": 0.0, "what": "correlation"}
    sim = budget.N_SIM if p in budget.SIM_LAG_P else None
    return Probe(f"lag/p={fmt_p(p)}/L={lag}", p, sizes(budget.N_MAIN, sim=sim), run,
                 doc=f"decisions at i and i+{lag} independent; chi-square 2 x 2")


def _cross_block(p):
    def run(impl, n, seeds):
        seed, offset = seeds(f"mask/p={fmt_p(p)}")
        return check_cross_block(impl, n=n, p=p, seed=seed, offset=offset)
    return Probe(f"lag_cross_block/p={fmt_p(p)}", p, sizes(budget.N_MAIN, sim=budget.N_SIM), run,
                 doc="last element of a 4-word block vs first of the next independent")


def _periodicity(p):
    def run(impl, n, seeds):
        seed, offset = seeds(f"mask/p={fmt_p(p)}")
        return check_periodicity(impl, n=n, p=p, seed=seed, offset=offset, max_lag=budget.MAX_PERIOD)
    return Probe(f"periodicity/max_lag={budget.MAX_PERIOD}", p, sizes(budget.N_MAIN, sim=budget.N_SIM), run,
                 doc=f"no autocorrelation at any lag 1..{budget.MAX_PERIOD} (FFT; max |z|, Bonferroni over lags)")


def probes():
    for p in budget.LAG_P:
        for lag in budget.LAGS:
            yield _lag(p, lag)
    yield _cross_block(0.5)
    yield _periodicity(0.5)
