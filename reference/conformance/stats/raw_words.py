"""Raw words of the stream (reference.stream, not a kernel): uniform on [0, 2**32).

One-sample Kolmogorov-Smirnov test (scipy.stats.kstest) of u = (w + 1/2) / 2**32 against
U(0, 1), on four cuts through the stream: consecutive positions (reference.stream_words,
starting mid-block), one position over consecutive seeds (low key word varies), one
position over seeds s + j 2**32 (high key word varies), and positions j (2**34 + 1) apart
(the counter's high word and the lane vary). These are stream-level hypotheses, run once
per battery (with the reference backend).
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from reference.dropout import stream_words
from reference.stream import MASK32, SHIFT32, philox4x32_10, words_for_positions

from . import budget
from .sampling import Probe, sizes

N_KS = 2**20        # consecutive words
N_KS_SWEEP = 2**16  # the other cuts


def ks_pvalue(words: np.ndarray) -> float:
    u = (words.astype(np.float64) + 0.5) / 2.0**32
    return float(stats.kstest(u, "uniform").pvalue)


def words_for_seeds(g: int, seeds: np.ndarray) -> np.ndarray:
    """Word of stream position ``g`` under each of ``seeds`` (uint64 array)."""
    seeds = np.asarray(seeds, dtype=np.uint64)
    b = np.uint64(g >> 2)
    c0 = np.full(seeds.shape, b & MASK32, dtype=np.uint64)
    c1 = np.full(seeds.shape, b >> SHIFT32, dtype=np.uint64)
    zero = np.zeros(seeds.shape, dtype=np.uint64)
    w = philox4x32_10(c0, c1, zero, zero, seeds & MASK32, seeds >> SHIFT32)
    return w[g & 3].astype(np.uint32)


def check_ks(case: str, seed: int, offset: int, n: int) -> float:
    if case == "consecutive":
        words = stream_words(n, seed, offset + 1)
    elif case == "seeds_low":
        words = words_for_seeds(offset + 5, np.uint64(seed) + np.arange(n, dtype=np.uint64))
    elif case == "seeds_high":
        seeds = np.uint64(seed) + (np.arange(n, dtype=np.uint64) << np.uint64(32))  # wraps mod 2**64
        words = words_for_seeds(offset + 5, seeds)
    elif case == "far_counters":
        g = np.uint64(offset) + np.arange(n, dtype=np.uint64) * np.uint64(2**34 + 1)
        words = words_for_positions(g, seed)
    else:
        raise ValueError(case)
    return ks_pvalue(words)


def _probe(case):
    label = f"ks_words/{case}"

    def run(impl, n, seeds):
        seed, offset = seeds(label)
        return check_ks(case, seed, offset, n)
    n = N_KS if case == "consecutive" else N_KS_SWEEP
    return Probe(label, float("nan"), sizes(n, quick=n), run, stream_level=True,
                 doc="the stream's words are U[0, 2**32); one-sample Kolmogorov-Smirnov")


def probes():
    for case in budget.KS_CASES:
        yield _probe(case)
