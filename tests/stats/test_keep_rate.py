"""Keep rate: the number of kept elements is Binomial(n, q), q = floor((1-p) 2**32) / 2**32."""

from __future__ import annotations

import pytest
from scipy import stats

from . import budget
from .sampling import Probe, fmt_p, keep_count, keep_prob


def check_keep_rate(impl, *, n: int, p: float, seed: int, offset: int) -> float:
    """Two-sided exact binomial test of the kept count of ``n`` consecutive positions."""
    kept = keep_count(impl, n, p, seed, offset)
    return stats.binomtest(kept, n, keep_prob(p)).pvalue


def _probe(p, n, n_sim, label=None):
    label = label or f"keep_rate/p={fmt_p(p)}"
    # Moderate p share their sample with the uniformity, neighbour and cross-call tests.
    sample = f"mask/p={fmt_p(p)}" if n == budget.N_MAIN else label

    def run(impl, n, seeds):
        seed, offset = seeds(sample)
        return check_keep_rate(impl, n=n, p=p, seed=seed, offset=offset)

    return Probe(label, p, n, n_sim, run)


def probes():
    for p in budget.KEEP_RATE_P:
        n = budget.N_EXTREME if p in budget.EXTREME_P else budget.N_MAIN
        yield _probe(p, n, budget.N_SIM if p in budget.SIM_KEEP_RATE_P else None)


def slow_probes():
    for p in budget.SLOW_KEEP_RATE_P:
        yield _probe(p, budget.N_SLOW, None, label=f"keep_rate_slow/p={fmt_p(p)}")


@pytest.mark.parametrize("probe", list(probes()), ids=lambda pr: pr.label)
@budget.documented
def test_keep_rate(backend, probe, judge):
    """H0: the kept count K of n consecutive stream positions is Binomial(n, q) with
    q = floor((1-p) 2**32) / 2**32 (within 2**-32 of 1 - p), for p in {KEEP_RATE_P}.
    Statistic: exact two-sided binomial test (scipy.stats.binomtest) of K.
    Sample: n = {N_MAIN} (p in {EXTREME_P}: n = {N_EXTREME}, ~33.6 expected rare events);
    CUDA simulator: n = {N_SIM} for p in {SIM_KEEP_RATE_P} only.
    Level: ALPHA = {FAMILY_ALPHA} / {COUNT} = {ALPHA:.3g} (Bonferroni, budget.py).
    """
    judge(probe, backend)


@pytest.mark.slow
@pytest.mark.parametrize("probe", list(slow_probes()), ids=lambda pr: pr.label)
@budget.documented
def test_keep_rate_slow(backend, probe, judge):
    """H0 as in test_keep_rate, at n = {N_SLOW} (in chunks of {CHUNK} consecutive offsets),
    p in {SLOW_KEEP_RATE_P}; CPU backends only (skipped under the CUDA simulator).
    Level: ALPHA = {ALPHA:.3g}.
    """
    judge(probe, backend)
