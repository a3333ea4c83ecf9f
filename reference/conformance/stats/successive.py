"""Independence of successive calls of a stateful implementation (``f(x, p)`` drawing from a
generator it holds): the masks of calls i and j keep the same element at rate q**2, not more.

One generator, reseeded once (where it can be), then consecutive calls on ``ones(n)``. The
overlap count of two calls is Binomial(n, q**2) under H0 (exact two-sided binomial test), for
the pairs a bug would make coincide: calls 1-2 and 2-3 (masks shared by pairs of calls, in
either alignment), lags 2 and 3 (a short cycle of states). And overlapping streams: call 2
against call 1 shifted by every s in 1 .. MAX_SHIFT (a generator advanced by fewer positions
than it drew, e.g. one Philox block per call): cross-correlation by FFT, max |z| with
Bonferroni over the shifts, as the periodicity check does within one call.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from . import budget
from .neighbours import max_lagged_correlation
from .sampling import Probe, _cached, fmt_p, impl_of, keep_prob, sizes, x_ones

P_SUCCESSIVE = 0.5
CALLS = 4
#: label -> (call a, call b); calls numbered from 0
PAIRS = {
    "calls1-2": (0, 1),
    "calls2-3": (1, 2),
    "lag2": (0, 2),
    "lag3": (0, 3),
}
MAX_SHIFT = 2**16


def successive_masks(impl, n, p: float, seed: int, k: int = CALLS) -> list:
    """Keep decisions of ``k`` successive calls on ``ones(n)`` (one reseed first, where possible)."""
    impl = impl_of(impl)

    def make():
        h = impl.hooks
        if h.reseed is not None:
            impl.reseed(seed)
        return np.stack([np.asarray(h.call(x_ones(n), p)) != 0 for _ in range(k)])

    return _cached(("successive", impl, n, p, seed, k), make)


def _shifted():
    def run(impl, n, seeds):
        seed, _ = seeds(f"successive/p={fmt_p(P_SUCCESSIVE)}")
        m = np.asarray(successive_masks(impl, n, P_SUCCESSIVE, seed), dtype=np.float64)
        pv, r, s = max_lagged_correlation(m[0], m[1], MAX_SHIFT)
        return pv, {"observed": r, "expected": 0.0, "what": "correlation", "shift": s}

    return Probe(f"successive/shifted/max={MAX_SHIFT}", P_SUCCESSIVE, sizes(budget.N_MAIN, sim=budget.N_SIM), run,
                 needs=("stateful",),
                 doc=f"call 2 against call 1 shifted by 1 .. {MAX_SHIFT} elements: no correlation (overlapping "
                     "streams); FFT, max |z|, Bonferroni over shifts")


def _probe(label):
    a_i, b_i = PAIRS[label]

    def run(impl, n, seeds):
        seed, _ = seeds(f"successive/p={fmt_p(P_SUCCESSIVE)}")
        m = successive_masks(impl, n, P_SUCCESSIVE, seed)
        a, b = m[a_i], m[b_i]
        both = int(np.count_nonzero(a & b))
        q = keep_prob(P_SUCCESSIVE)
        pv = stats.binomtest(both, a.size, q**2).pvalue
        return pv, {"observed": float(np.mean(a == b)), "expected": q**2 + (1 - q) ** 2, "what": "agreement"}

    what = {"calls1-2": "calls 1 and 2", "calls2-3": "calls 2 and 3", "lag2": "calls 1 and 3",
            "lag3": "calls 1 and 4"}[label]
    return Probe(f"successive/{label}", P_SUCCESSIVE, sizes(budget.N_MAIN, sim=budget.N_SIM), run,
                 needs=("stateful",), doc=f"{what} of one generator: overlap of kept sets is Binomial(n, q**2)")


def probes():
    for label in PAIRS:
        yield _probe(label)
    yield _shifted()
