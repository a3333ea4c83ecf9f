"""Independence across calls: two calls meant to be independent (different seeds, or
adjacent non-overlapping offset ranges) keep the same element at rate q**2, not more.

The overlap count (kept in both masks) of n elements is Binomial(n, q**2) under H0; exact
two-sided binomial test. Pairs: seed and seed + 1 (low key word), seed + 2**32 (high key
word), seed ^ 2**63 (top bit), and offset o versus o + n (the next, adjacent range).
A kernel that ignores the seed's high word or the offset gives identical masks there:
overlap rate q instead of q**2. Also: the same (seed, offset) repeats bit for bit.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from . import budget
from .sampling import Probe, fmt_p, keep_mask, keep_prob, x_signed

P_CROSS = 0.5


def other_call(pair: str, seed: int, offset: int, n: int) -> tuple[int, int]:
    if pair == "seed+1":
        return seed + 1, offset
    if pair == "seed+2**32":
        return seed + 2**32, offset
    if pair == "seed^2**63":
        return seed ^ 2**63, offset
    if pair == "offset+n":
        return seed, offset + n
    raise ValueError(pair)


def check_cross_call(impl, *, n, p, seed, offset, pair) -> float:
    a = keep_mask(impl, n, p, seed, offset)
    seed2, offset2 = other_call(pair, seed, offset, n)
    b = keep_mask(impl, n, p, seed2, offset2)
    both = int(np.count_nonzero(a & b))
    return stats.binomtest(both, n, keep_prob(p) ** 2).pvalue


def _probe(pair):
    def run(impl, n, seeds):
        seed, offset = seeds(f"mask/p={fmt_p(P_CROSS)}")
        return check_cross_call(impl, n=n, p=P_CROSS, seed=seed, offset=offset, pair=pair)
    return Probe(f"cross_call/{pair}", P_CROSS, budget.N_MAIN, budget.N_SIM, run)


def probes():
    for pair in budget.CROSS_PAIRS:
        yield _probe(pair)


@pytest.mark.parametrize("probe", list(probes()), ids=lambda pr: pr.label)
@budget.documented
def test_independent_across_calls(backend, probe, judge):
    """H0: two calls with (seed, offset) and the paired call in {CROSS_PAIRS} keep the same
    element with probability q**2 (independent masks), p = 0.5. Statistic: exact two-sided
    binomial test of the overlap count. Sample: n = {N_MAIN} elements per call ({N_SIM}
    under the CUDA simulator). Level: ALPHA = {ALPHA:.3g} (budget.py).
    """
    judge(probe, backend)


def test_same_seed_and_offset_repeat_exactly(backend, stat_seeds):
    """Not statistical (not in the budget): two calls with the same (seed, offset) return
    bit-identical outputs and masks. n = 65536 (1024 under the CUDA simulator), p = 0.3."""
    n = 1024 if budget.simulated(backend) else 65536
    seed, offset = stat_seeds("repeat")
    x = x_signed(n)
    y1, m1 = backend.dropout_forward(x, 0.3, seed=seed, offset=offset + 1)
    y2, m2 = backend.dropout_forward(x, 0.3, seed=seed, offset=offset + 1)
    np.testing.assert_array_equal(np.asarray(y1).view(np.uint32), np.asarray(y2).view(np.uint32))
    np.testing.assert_array_equal(np.asarray(m1), np.asarray(m2))
