"""Uniformity across positions: the keep rate does not depend on where an element sits.

Chi-square test of homogeneity (scipy.stats.chi2_contingency, no continuity correction)
of the 2 x m table (kept, dropped) by class ``position mod m``, for m = 4 (Philox lanes),
32 (a warp), 128 (a CUDA block under the simulator), 2048 (a CUDA block on a GPU: 128
threads x 16 elements; four cpu tiles of 512). Offsets are multiples of
2048, so element index and stream position agree mod m. "Block boundaries": tensors that
start at lane r = 1, 2, 3 of a Philox block, classes = stream lane g mod 4.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from . import budget
from .sampling import Probe, fmt_p, keep_mask, sizes


def class_pvalue(kept: np.ndarray, classes: np.ndarray, m: int) -> float:
    k = np.bincount(classes, weights=kept, minlength=m)
    tot = np.bincount(classes, minlength=m)
    table = np.vstack([k, tot - k])
    if (table.sum(axis=1) == 0).any():  # everything kept or dropped: homogeneous trivially
        return 1.0
    return float(stats.chi2_contingency(table, correction=False).pvalue)


def check_position_uniformity(impl, *, n, p, seed, offset, modulus) -> float:
    kept = keep_mask(impl, n, p, seed, offset)
    classes = ((np.arange(n, dtype=np.uint64) + np.uint64(offset)) % np.uint64(modulus)).astype(np.intp)
    return class_pvalue(kept, classes, modulus)


P_UNIFORM = 0.5


def _modulus(m):
    def run(impl, n, seeds):
        seed, offset = seeds(f"mask/p={fmt_p(P_UNIFORM)}")
        return check_position_uniformity(impl, n=n, p=P_UNIFORM, seed=seed, offset=offset, modulus=m)
    sim = budget.N_SIM if m in budget.SIM_MODULI else None
    return Probe(f"uniformity_mod/m={m}", P_UNIFORM, sizes(budget.N_MAIN, sim=sim), run,
                 doc=f"equal keep probability for every class of position mod {m}; chi-square 2 x m")


def _block(r):
    label = f"uniformity_block/lane={r}"

    def run(impl, n, seeds):
        seed, offset = seeds(label)
        return check_position_uniformity(impl, n=n, p=P_UNIFORM, seed=seed, offset=offset + r, modulus=4)
    sim = budget.N_SIM if r in budget.SIM_BLOCK_OFFSETS else None
    return Probe(label, P_UNIFORM, sizes(budget.N_MAIN, sim=sim), run, needs=("offset",),
                 doc=f"a tensor starting at lane {r} of a 4-word block: equal keep probability per lane")


def probes():
    for m in budget.MODULI:
        yield _modulus(m)
    for r in budget.BLOCK_OFFSETS:
        yield _block(r)
