"""Independence across calls: two calls meant to be independent keep the same element at
rate q**2, not more.

The overlap count (kept in both masks) of n elements is Binomial(n, q**2) under H0; exact
two-sided binomial test. Each pair is one whose masks would *coincide* under a plausible
bug: seed + 1 (low key word), seed + 2**32 and seed ^ 2**63 (a seed cut to 32 bits),
seed ^ (2**32 + 1) (a seed folded to 32 bits by xor), offset + n (offset ignored),
offset + 2**32 (a 32-bit position), offset + 2**34 (the block counter's high word dropped).
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from . import budget
from .sampling import Probe, fmt_p, keep_mask, keep_prob, sizes

P_CROSS = 0.5

_OTHER = {
    "seed+1": lambda s, o, n: (s + 1, o),
    "seed+2**32": lambda s, o, n: (s + 2**32, o),
    "seed^2**63": lambda s, o, n: (s ^ 2**63, o),
    "seed^(2**32+1)": lambda s, o, n: (s ^ (2**32 + 1), o),
    "offset+n": lambda s, o, n: (s, o + n),
    "offset+2**32": lambda s, o, n: (s, o + 2**32),
    "offset+2**34": lambda s, o, n: (s, o + 2**34),
}


def other_call(pair: str, seed: int, offset: int, n: int) -> tuple[int, int]:
    return _OTHER[pair](seed, offset, n)


def check_cross_call(impl, *, n, p, seed, offset, pair) -> float:
    a = keep_mask(impl, n, p, seed, offset)
    seed2, offset2 = other_call(pair, seed, offset, n)
    b = keep_mask(impl, n, p, seed2, offset2)
    both = int(np.count_nonzero(a & b))
    return stats.binomtest(both, n, keep_prob(p) ** 2).pvalue


def _probe(pair):
    def run(impl, n, seeds):
        seed, offset = seeds(f"mask/p={fmt_p(P_CROSS)}")
        pv = check_cross_call(impl, n=n, p=P_CROSS, seed=seed, offset=offset, pair=pair)
        a = keep_mask(impl, n, P_CROSS, seed, offset)
        b = keep_mask(impl, n, P_CROSS, *other_call(pair, seed, offset, n))
        q = keep_prob(P_CROSS)
        return pv, {"observed": float(np.mean(a == b)), "expected": q**2 + (1 - q) ** 2, "what": "agreement"}
    return Probe(f"cross_call/{pair}", P_CROSS, sizes(budget.N_MAIN, sim=budget.N_SIM), run,
                 needs=("offset",) if pair.startswith("offset") else (),
                 doc=f"call (seed, offset) vs ({pair}): overlap of kept sets is Binomial(n, q**2)")


def probes():
    for pair in budget.CROSS_PAIRS:
        yield _probe(pair)
