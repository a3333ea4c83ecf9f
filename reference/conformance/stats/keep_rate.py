"""Keep rate: the number of kept elements is Binomial(n, q), q = floor((1-p) 2**32) / 2**32."""

from __future__ import annotations

from scipy import stats

from . import budget
from .sampling import Probe, fmt_p, keep_count, keep_prob, sizes


def binomial_pvalue(kept: int, n: int, p: float) -> float:
    """Two-sided exact binomial test of ``kept`` of ``n`` decisions against the keep
    probability of ``p`` (also the structured-mask keep rate's test, structured.py)."""
    return stats.binomtest(kept, n, keep_prob(p)).pvalue


DOC = ("the kept count K of n consecutive positions is Binomial(n, q), q = floor((1-p) 2**32)/2**32; "
       "exact two-sided binomial test")


def _probe(p, sz, label=None, slow=False):
    label = label or f"keep_rate/p={fmt_p(p)}"
    # Moderate p share their sample with the uniformity, neighbour and cross-call tests.
    sample = f"mask/p={fmt_p(p)}" if sz["full"] == budget.N_MAIN else label

    def run(impl, n, seeds):
        seed, offset = seeds(sample)
        kept = keep_count(impl, n, p, seed, offset)
        # the observed count, for the report's plot, and the rate for a failure's explanation
        return binomial_pvalue(kept, n, p), {"kept": kept, "observed": kept / n, "expected": keep_prob(p)}

    return Probe(label, p, sz, run, doc=DOC, slow=slow)


def probes():
    for p in budget.KEEP_RATE_P:
        if p in budget.EXTREME_P:  # rare events need the big sample, even in --quick
            sz = sizes(budget.N_EXTREME, quick=budget.N_EXTREME)
        else:
            sz = sizes(budget.N_MAIN, sim=budget.N_SIM if p in budget.SIM_KEEP_RATE_P else None)
        yield _probe(p, sz)


def slow_probes():
    for p in budget.SLOW_KEEP_RATE_P:
        yield _probe(p, sizes(budget.N_SLOW, quick=None), label=f"keep_rate_slow/p={fmt_p(p)}", slow=True)
