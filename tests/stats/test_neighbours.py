"""Independence between neighbours: the decisions of positions g and g + L are independent.

For each lag L, a 2 x 2 contingency table of (kept at i, kept at i + L) over all
n - L overlapping pairs, and Pearson's chi-square test of independence (no continuity
correction, df = 1). Under H0 (an i.i.d. Bernoulli sequence) the overlapping pairs make
the products (m_i - q)(m_{i+L} - q) uncorrelated, not independent; the statistic
n_pairs * phi**2 (phi the table's correlation) is still asymptotically chi-square(1)
(CLT for m-dependent sequences). The "cross-block" table uses only the disjoint lag-1
pairs (g, g + 1) with g = 3 mod 4, i.e. last word of a block next to the first of the next.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from . import budget
from .sampling import Probe, fmt_p, keep_mask


def pair_pvalue(a: np.ndarray, b: np.ndarray) -> float:
    n11 = int(np.count_nonzero(a & b))
    n10 = int(np.count_nonzero(a)) - n11
    n01 = int(np.count_nonzero(b)) - n11
    n00 = a.size - n11 - n10 - n01
    table = np.array([[n11, n10], [n01, n00]])
    if (table.sum(axis=0) == 0).any() or (table.sum(axis=1) == 0).any():
        return 1.0
    return float(stats.chi2_contingency(table, correction=False).pvalue)


def check_lag(impl, *, n, p, seed, offset, lag) -> float:
    kept = keep_mask(impl, n, p, seed, offset)
    return pair_pvalue(kept[:-lag], kept[lag:])


def check_cross_block(impl, *, n, p, seed, offset) -> float:
    kept = keep_mask(impl, n, p, seed, offset)
    first = (3 - offset) % 4            # index of the first element on lane 3
    i = np.arange(first, n - 1, 4)
    return pair_pvalue(kept[i], kept[i + 1])


def _lag(p, lag):
    def run(impl, n, seeds):
        seed, offset = seeds(f"mask/p={fmt_p(p)}")
        return check_lag(impl, n=n, p=p, seed=seed, offset=offset, lag=lag)
    sim = budget.N_SIM if p in budget.SIM_LAG_P else None
    return Probe(f"lag/p={fmt_p(p)}/L={lag}", p, budget.N_MAIN, sim, run)


def _cross_block(p):
    def run(impl, n, seeds):
        seed, offset = seeds(f"mask/p={fmt_p(p)}")
        return check_cross_block(impl, n=n, p=p, seed=seed, offset=offset)
    return Probe(f"lag_cross_block/p={fmt_p(p)}", p, budget.N_MAIN, budget.N_SIM, run)


def probes():
    for p in budget.LAG_P:
        for lag in budget.LAGS:
            yield _lag(p, lag)
    yield _cross_block(0.5)


_ALL = list(probes())


@pytest.mark.parametrize("probe", [pr for pr in _ALL if pr.family == "lag"], ids=lambda pr: pr.label)
@budget.documented
def test_neighbours_independent(backend, probe, judge):
    """H0: the keep decisions at positions i and i + L are independent, L in {LAGS},
    p in {LAG_P}. Statistic: Pearson chi-square of the 2 x 2 table of the n - L overlapping
    pairs, df = 1 (asymptotic; module docstring). Sample: n = {N_MAIN} consecutive
    elements ({N_SIM}, p = 0.5 under the CUDA simulator). Level: ALPHA = {ALPHA:.3g}.
    """
    judge(probe, backend)


@pytest.mark.parametrize("probe", [pr for pr in _ALL if pr.family == "lag_cross_block"], ids=lambda pr: pr.label)
@budget.documented
def test_neighbours_independent_across_block_boundary(backend, probe, judge):
    """H0: the last element of a Philox block and the first of the next are independent
    (p = 0.5). Statistic: chi-square of the 2 x 2 table of the n/4 disjoint pairs
    (g, g + 1), g = 3 mod 4, df = 1. Sample: n = {N_MAIN} ({N_SIM} under the CUDA
    simulator). Level: ALPHA = {ALPHA:.3g} (budget.py).
    """
    judge(probe, backend)
