"""Within-word sharing: neighbours that draw their decisions from bytes of one random word.

A kernel that spends one 32-bit word on four neighbours, each through a different byte
rotation (or any byte shuffle) of it, keeps the right rate, and its neighbours are nearly
independent at every single p: the decision at ``word < t`` is set by the top byte, and each
neighbour's top byte is a different byte of the word. The lag tests do not see it (0 of 5
seeds at 2**23 elements). Two calls with the same seed and offset do: call A at
``t = 2**16`` (``p = 1 - 2**-16``: kept iff the top *two* bytes of the element's draw are 0)
and call B at ``t = 2**24`` (``p = 1 - 2**-8``: kept iff its top byte is 0). Under the null
(elements independent, whatever the RNG, and whether or not the calls are nested) an
element j != i kept in B is independent of i kept in A. Under byte sharing, the element whose
top byte is the second byte of i's word is kept in B whenever i is kept in A.

Statistic: D = the distinct positions j within +-3 of an element kept in A (j not itself kept
in A); K = how many of them are kept in B. Conditionally on A, K is at most Binomial(|D|, q_B)
(q_B = P(kept in B | not kept in A) <= q_B): a one-sided exact binomial p-value (conservative).
About 128 elements are kept in A at 2**23, so ~768 positions, ~3 expected; a byte rotation
gives ~130.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from . import budget
from .sampling import Probe, keep_mask, keep_prob, sizes

P_TWO_BYTES = 1 - 2.0**-16   # keep threshold 2**16: the top two bytes are 0
P_ONE_BYTE = 1 - 2.0**-8     # keep threshold 2**24: the top byte is 0
LAGS = (-3, -2, -1, 1, 2, 3)  # within a 4-word block, in both directions


def byte_sharing_pvalue(a: np.ndarray, b: np.ndarray) -> tuple[float, dict]:
    n = a.size
    ia = np.flatnonzero(a)
    near = (ia[:, None] + np.asarray(LAGS)[None, :]).ravel()
    near = np.unique(near[(near >= 0) & (near < n)])
    near = near[~a[near]]
    k = int(np.count_nonzero(b[near]))
    q = keep_prob(P_ONE_BYTE)
    pv = float(stats.binom.sf(k - 1, near.size, q)) if near.size else 1.0
    rate = k / near.size if near.size else 0.0
    return pv, {"observed": rate, "expected": q, "k": k, "positions": int(near.size), "kept_a": int(ia.size)}


def check_byte_sharing(impl, *, n, seed, offset) -> tuple[float, dict]:
    a = keep_mask(impl, n, P_TWO_BYTES, seed, offset)
    b = keep_mask(impl, n, P_ONE_BYTE, seed, offset)
    return byte_sharing_pvalue(a, b)


def probes():
    label = "byte_sharing/lags=1..3"

    def run(impl, n, seeds):
        seed, offset = seeds(label)
        return check_byte_sharing(impl, n=n, seed=seed, offset=offset)

    yield Probe(label, P_ONE_BYTE, sizes(budget.N_MAIN), run,
                doc="neighbours (+-1..3) of an element kept at p = 1 - 2**-16 are kept at p = 1 - 2**-8 (same seed) "
                    "at the rate 2**-8: no byte of one word shared; one-sided exact binomial")
