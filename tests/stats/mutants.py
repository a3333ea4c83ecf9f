"""Deliberately broken dropout kernels: the battery must catch every one of them.

Each mutant is a NumPy implementation with the backends' API (``NAME``,
``dropout_forward``, ``dropout_backward``), built on the pieces of ``reference.stream``,
with one plausible bug. ``dropout_backward`` regenerates the mutant's own mask (or reads
the stored one), so the backward tests see the same bug.

``python -m tests.stats.mutants`` runs every probe of the battery on every mutant (and on
the reference) and prints the detection matrix as markdown (about a minute).
"""

from __future__ import annotations

import math

import numpy as np

from reference.dropout import pack_bits, stream_words, unpack_bits
from reference.stream import MASK32, SHIFT32, keep_threshold, philox4x32_10, scale_for, split_seed


def _block_words(numel: int, seed: int, offset: int, counter_of=None) -> np.ndarray:
    """Philox words of the blocks covering ``offset .. offset + numel - 1``, shape (blocks, 4),
    with block ``b`` computed from counter ``counter_of(b)`` (the contract: ``b``)."""
    first, last = offset // 4, (offset + numel - 1) // 4
    b = np.arange(last - first + 1, dtype=np.uint64) + np.uint64(first)
    c = b if counter_of is None else counter_of(b)
    zero = np.zeros_like(c)
    k0, k1 = split_seed(seed)
    return np.stack(philox4x32_10(c & MASK32, c >> SHIFT32, zero, zero, k0, k1), axis=1).astype(np.uint32)


def _flat(blocks: np.ndarray, numel: int, offset: int) -> np.ndarray:
    skip = offset % 4
    return blocks.ravel()[skip: skip + numel]


# --- the bugs: each returns the keep mask (bool, flat) -------------------------------------


def _correct(numel, p, seed, offset):
    return stream_words(numel, seed, offset) < keep_threshold(p)


def _threshold_from_p(numel, p, seed, offset):
    # keep iff u < floor(p * 2**32): compares against p instead of 1 - p
    return stream_words(numel, seed, offset) < keep_threshold(1.0 - p)


def _eight_bit(numel, p, seed, offset):
    # keep iff (u >> 24) < floor((1 - p) * 256): the threshold has 8 bits of resolution
    return (stream_words(numel, seed, offset) >> np.uint32(24)) < np.uint32(math.floor((1.0 - p) * 256))


def _word0_for_block(numel, p, seed, offset):
    # the four elements of a block all read word 0
    w = _block_words(numel, seed, offset)
    return _flat(np.repeat(w[:, :1], 4, axis=1), numel, offset) < keep_threshold(p)


def _ignores_seed_high(numel, p, seed, offset):
    # the key's high word is dropped: seed truncated to 32 bits
    return stream_words(numel, seed & 0xFFFFFFFF, offset) < keep_threshold(p)


def _ignores_offset(numel, p, seed, offset):
    # every call starts at stream position 0
    return stream_words(numel, seed, 0) < keep_threshold(p)


def _reuses_previous_counter(numel, p, seed, offset):
    # an off-by-one in the counter: odd block b uses counter b - 1 (blocks 2k, 2k+1 repeat)
    w = _block_words(numel, seed, offset,
                     counter_of=lambda b: b - (b & np.uint64(1)))
    return _flat(w, numel, offset) < keep_threshold(p)


def _neighbour_dependent(numel, p, seed, offset):
    # a stale predicate: when the low byte of an element's word is 0 (a sentinel test on the
    # wrong width) the decision is not recomputed and the previous element's is reused
    u = stream_words(numel, seed, offset)
    fresh = u < keep_threshold(p)
    stale = (u & np.uint32(0xFF)) == 0
    stale[0] = False
    src = np.where(stale, 0, np.arange(numel))
    np.maximum.accumulate(src, out=src)  # index of the last freshly decided element
    return fresh[src]


def _one(p, dtype):
    return np.dtype(dtype).type(1.0)


def _inverse_p(p, dtype):
    return np.dtype(dtype).type(1.0 / p) if p > 0 else np.dtype(dtype).type(0.0)


class Mutant:
    def __init__(self, name, bug, mask_fn=_correct, scale_fn=scale_for):
        self.name, self.bug = name, bug
        self.NAME = f"mutant:{name}"
        self._mask, self._scale = mask_fn, scale_fn

    def __repr__(self):
        return self.NAME

    def _apply(self, x, kept, p):
        return (x * kept.astype(x.dtype)) * self._scale(p, x.dtype)

    def dropout_forward(self, x, p, *, seed, offset=0, training=True, mask_format="bool", out=None):
        x = np.asarray(x)
        if not training:
            return x.copy(), None
        kept = self._mask(x.size, float(p), int(seed), int(offset)).reshape(x.shape)
        y = self._apply(x, kept, p)
        if mask_format == "bool":
            return y, kept
        if mask_format == "bits":
            return y, pack_bits(kept)
        return y, None

    def dropout_backward(self, grad_y, p, *, mask=None, seed=None, offset=0, out=None):
        g = np.asarray(grad_y)
        if mask is None:
            kept = self._mask(g.size, float(p), int(seed), int(offset)).reshape(g.shape)
        elif mask.dtype == np.bool_:
            kept = mask
        else:
            kept = unpack_bits(mask, g.shape)
        return self._apply(g, kept, p)


CORRECT = Mutant("none (correct)", "no bug: the contract, for comparison")

MUTANTS = (
    Mutant("no_scale", "forgets the 1/(1-p) scale", scale_fn=_one),
    Mutant("scale_1_over_p", "scales by 1/p instead of 1/(1-p)", scale_fn=_inverse_p),
    Mutant("threshold_from_p", "keep iff u < floor(p 2**32): compares against p, not 1-p",
           mask_fn=_threshold_from_p),
    Mutant("eight_bit_threshold", "keep iff (u >> 24) < floor((1-p) 256): 8-bit threshold",
           mask_fn=_eight_bit),
    Mutant("word0_for_block", "uses word 0 of the Philox block for all four elements",
           mask_fn=_word0_for_block),
    Mutant("ignores_seed_high", "ignores the seed's high 32 bits (key word k1 = 0)",
           mask_fn=_ignores_seed_high),
    Mutant("ignores_offset", "ignores the offset (every call starts at position 0)",
           mask_fn=_ignores_offset),
    Mutant("reuses_previous_counter", "odd block b uses the counter of block b-1",
           mask_fn=_reuses_previous_counter),
    Mutant("neighbour_dependent", "element i+1 reuses element i's decision when its word's "
           "low byte is 0 (1 in 256)", mask_fn=_neighbour_dependent),
)

# The probe(s) expected to catch each mutant at the CI sizes (test_mutants.py asserts it;
# the full matrix, every probe on every mutant, is `python -m tests.stats.mutants`).
CATCHERS = {
    "no_scale": ("mean_forward/p=0.5", "variance/p=0.5"),
    "scale_1_over_p": ("mean_forward/p=0.1", "mean_backward_regenerate/p=0.9"),
    "threshold_from_p": ("keep_rate/p=0.1", "keep_rate/p=0.99"),
    "eight_bit_threshold": ("keep_rate/p=0.01", "keep_rate/p=1e-06"),
    "word0_for_block": ("lag/p=0.5/L=1", "lag/p=0.5/L=2"),
    "ignores_seed_high": ("cross_call/seed+2**32",),
    "ignores_offset": ("cross_call/offset+n",),
    "reuses_previous_counter": ("lag/p=0.5/L=4",),
    "neighbour_dependent": ("lag/p=0.5/L=1", "lag/p=0.1/L=1"),
}


def fmt_pvalue(pv: float) -> str:
    if pv == 0.0:
        return "<1e-300"
    return f"{pv:.2g}"


def matrix(seeds=None, mutants=MUTANTS, include_correct=True):
    """{probe label: {impl name: p-value}} for every backend probe of the battery."""
    from . import battery
    from .budget import FIXED_MASTER_SEED
    from .sampling import Seeds, clear_cache

    seeds = seeds or Seeds(FIXED_MASTER_SEED)
    impls = ([CORRECT] if include_correct else []) + list(mutants)
    out = {}
    for impl in impls:
        for probe in battery.backend_probes():
            out.setdefault(probe.label, {})[impl.name] = probe(impl, seeds)[0]
        clear_cache()
    return out


def main():
    from .budget import ALPHA

    m = matrix()
    names = [CORRECT.name] + [mu.name for mu in MUTANTS]
    print(f"p-values of every probe (rows) on the correct kernel and on every mutant (columns); "
          f"**bold** = rejected at ALPHA = {ALPHA:.3g}.\n")
    print("| probe | " + " | ".join(names) + " |")
    print("|---|" + "---|" * len(names))
    for label, row in m.items():
        cells = [f"**{fmt_pvalue(row[n])}**" if row[n] < ALPHA else fmt_pvalue(row[n]) for n in names]
        print(f"| {label} | " + " | ".join(cells) + " |")
    print()
    print("| mutant | bug | caught by (probes with p < ALPHA) |")
    print("|---|---|---|")
    for mu in MUTANTS:
        caught = [f"{lab} ({fmt_pvalue(row[mu.name])})" for lab, row in m.items() if row[mu.name] < ALPHA]
        print(f"| {mu.name} | {mu.bug} | {len(caught)}: " + ", ".join(caught[:4])
              + (", ..." if len(caught) > 4 else "") + " |")


if __name__ == "__main__":
    main()
