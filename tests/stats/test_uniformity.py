"""Uniformity across positions: the keep rate does not depend on where an element sits.

Chi-square test of homogeneity (scipy.stats.chi2_contingency, no continuity correction)
of the 2 x m table (kept, dropped) by class ``position mod m``, for m = 4 (Philox lanes),
32 (a warp), 128 (a simulator CUDA tile), 2048 (the cpu tile). Offsets are multiples of
2048, so element index and stream position agree mod m. "Block boundaries": tensors that
start at lane r = 1, 2, 3 of a Philox block, classes = stream lane g mod 4.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from . import budget
from .sampling import Probe, fmt_p, keep_mask


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
    return Probe(f"uniformity_mod/m={m}", P_UNIFORM, budget.N_MAIN, sim, run)


def _block(r):
    label = f"uniformity_block/lane={r}"

    def run(impl, n, seeds):
        seed, offset = seeds(label)
        return check_position_uniformity(impl, n=n, p=P_UNIFORM, seed=seed, offset=offset + r, modulus=4)
    sim = budget.N_SIM if r in budget.SIM_BLOCK_OFFSETS else None
    return Probe(label, P_UNIFORM, budget.N_MAIN, sim, run)


def probes():
    for m in budget.MODULI:
        yield _modulus(m)
    for r in budget.BLOCK_OFFSETS:
        yield _block(r)


_ALL = list(probes())


@pytest.mark.parametrize("probe", [pr for pr in _ALL if pr.family == "uniformity_mod"], ids=lambda pr: pr.label)
@budget.documented
def test_uniform_across_positions(backend, probe, judge):
    """H0: the keep probability is the same for every class of position mod m, m in {MODULI}
    (p = 0.5). Statistic: chi-square homogeneity test of the 2 x m table, df = m - 1.
    Sample: n = {N_MAIN} consecutive elements ({N_SIM} and m in {SIM_MODULI} under the
    CUDA simulator). Level: ALPHA = {ALPHA:.3g} (budget.py).
    """
    judge(probe, backend)


@pytest.mark.parametrize("probe", [pr for pr in _ALL if pr.family == "uniformity_block"], ids=lambda pr: pr.label)
@budget.documented
def test_uniform_at_block_boundaries(backend, probe, judge):
    """H0: a tensor starting at lane r in {BLOCK_OFFSETS} of a Philox block (so its first and
    last blocks are partial and every element's index and lane differ) has the same keep
    probability at every lane g mod 4 (p = 0.5). Statistic: chi-square homogeneity test of
    the 2 x 4 table, df = 3. Sample: n = {N_MAIN} ({N_SIM}, r = 1 under the CUDA
    simulator). Level: ALPHA = {ALPHA:.3g} (budget.py).
    """
    judge(probe, backend)
