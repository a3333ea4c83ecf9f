"""Mutants: deliberately broken dropout implementations; the checks must catch every one of them.

Each mutant is a NumPy implementation with the backends' API (``dropout_forward``,
``dropout_backward``), built on the pieces of ``reference.stream``, with one plausible bug;
each is addressable as an IMPL string, e.g. ``dropout-check reference.conformance.mutants:no_scale``.
``dropout_backward`` regenerates the mutant's own mask (or reads the stored one), so the
backward tests see the same bug. Mutants claim no stream (they are judged at level
'statistical' unless asked otherwise): they are caught by statistics, not by exactness;
except ``noise_broadcast_order``, which claims our stream (level 'contract'): its masks are
statistically perfect and only exactness can tell. The scaffold takes the whole API: the
16-bit formats (float32 arithmetic, one rounding), ``noise_shape`` and ``out=``.

``python -m reference.conformance.mutants`` runs every check on every mutant (and on the bug-free
scaffold, at level contract) and prints the detection matrix as markdown (a few minutes).
"""

from __future__ import annotations

import math

import numpy as np

from reference.dropout import pack_bits, stream_words, unpack_bits
from reference.stream import MASK32, SHIFT32, keep_threshold, philox4x32_10, scale_for, split_seed, words_for_positions


def _words(numel: int, seed: int, offset: int, block_of=None, key=None) -> np.ndarray:
    """Words of positions offset .. offset + numel - 1, block b computed from counter
    ``block_of(b)`` (the contract: b) under key ``key`` (the contract: split_seed(seed))."""
    if numel == 0:
        return np.empty(0, np.uint32)
    first, last = offset // 4, (offset + numel - 1) // 4
    b = np.arange(last - first + 1, dtype=np.uint64) + np.uint64(first)
    c = b if block_of is None else block_of(b)
    zero = np.zeros_like(c)
    k0, k1 = key if key is not None else split_seed(seed)
    w = np.stack(philox4x32_10(c & MASK32, c >> SHIFT32, zero, zero, k0, k1), axis=1).astype(np.uint32)
    return w.ravel()[offset % 4: offset % 4 + numel]


def _flat(mask_fn):
    """A bug in the flat stream: the same for every shape."""
    def shaped(shape, p, seed, offset):
        n = int(np.prod(shape, dtype=np.int64))
        return mask_fn(n, p, seed, offset).reshape(shape)
    return shaped


# --- the bugs: each returns the flat keep mask (bool) ----------------------------------------


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
    w = _words(4 * (numel // 4 + 2), seed, offset - offset % 4).reshape(-1, 4)
    return np.repeat(w[:, :1], 4, axis=1).ravel()[offset % 4: offset % 4 + numel] < keep_threshold(p)


def _byte_rotations(numel, p, seed, offset):
    # four neighbours share one word: lane j of a block uses word 0 rotated left by 8 j bits
    w = _words(4 * (numel // 4 + 2), seed, offset - offset % 4).reshape(-1, 4)[:, :1].astype(np.uint64)
    rot = np.concatenate([((w << np.uint64(8 * j)) | (w >> np.uint64(32 - 8 * j))) & MASK32 if j else w
                          for j in range(4)], axis=1)
    return rot.ravel()[offset % 4: offset % 4 + numel] < keep_threshold(p)


def _ignores_seed_high(numel, p, seed, offset):
    # the key's high word is dropped: seed truncated to 32 bits
    return stream_words(numel, seed & 0xFFFFFFFF, offset) < keep_threshold(p)


def _seed_xor_folded(numel, p, seed, offset):
    # a 64-bit seed folded into a 32-bit generator seed: k0 = lo ^ hi, k1 = 0
    key = (np.uint64((seed ^ (seed >> 32)) & 0xFFFFFFFF), np.uint64(0))
    return _words(numel, seed, offset, key=key) < keep_threshold(p)


def _ignores_offset(numel, p, seed, offset):
    # every call starts at stream position 0
    return stream_words(numel, seed, 0) < keep_threshold(p)


def _offset_rounded_to_block(numel, p, seed, offset):
    # the start is rounded down to a 4-word block: offset % 4 is lost
    return stream_words(numel, seed, offset - offset % 4) < keep_threshold(p)


def _position_32bit(numel, p, seed, offset):
    # the stream position is held in 32 bits: positions g and g + 2**32 coincide
    g = (np.arange(numel, dtype=np.uint64) + np.uint64(offset)) & MASK32
    from reference.stream import words_for_positions
    return words_for_positions(g, seed) < keep_threshold(p)


def _counter_high_word_dropped(numel, p, seed, offset):
    # the block counter's high word is never set: blocks b and b + 2**32 coincide
    return _words(numel, seed, offset, block_of=lambda b: b & MASK32) < keep_threshold(p)


def _tile_overlap(numel, p, seed, offset):
    # tiles of 65536 elements at a stride of 64512 words: each tile's last 1024 elements reuse
    # the words of the next tile's first 1024 (a periodic defect: period 2**16, lag 1024)
    g = np.arange(numel, dtype=np.uint64) + np.uint64(offset)
    g = (g >> np.uint64(16)) * np.uint64(64512) + (g & np.uint64(0xFFFF))
    from reference.stream import words_for_positions
    return words_for_positions(g, seed) < keep_threshold(p)


def _reuses_previous_counter(numel, p, seed, offset):
    # an off-by-one in the counter: odd block b uses counter b - 1 (blocks 2k, 2k+1 repeat)
    return _words(numel, seed, offset, block_of=lambda b: b - (b & np.uint64(1))) < keep_threshold(p)


def _pairs_share(numel, p, seed, offset):
    """Neighbouring elements (stream positions 2k, 2k+1) share the decision of position 2k:
    each element's keep rate is right, the pairs are perfectly correlated (docs/THEORY.md)."""
    g = np.arange(numel, dtype=np.uint64) + np.uint64(offset)
    return words_for_positions(g - (g & np.uint64(1)), seed) < keep_threshold(p)


def _neighbour_dependent(numel, p, seed, offset):
    # a stale predicate: when the low byte of an element's word is 0 (a sentinel test on the
    # wrong width) the decision is not recomputed and the previous element's is reused
    u = stream_words(numel, seed, offset)
    fresh = u < keep_threshold(p)
    if numel == 0:
        return fresh
    stale = (u & np.uint32(0xFF)) == 0
    stale[0] = False
    src = np.where(stale, 0, np.arange(numel))
    np.maximum.accumulate(src, out=src)  # index of the last freshly decided element
    return fresh[src]


def _same_mask_across_batch(shape, p, seed, offset):
    # one mask for x[0], broadcast over the batch axis: right for 1-D, wrong for any batch
    if len(shape) < 2:
        return _flat(_correct)(shape, p, seed, offset)
    row = _flat(_correct)(shape[1:], p, seed, offset)
    return np.broadcast_to(row, shape).copy()


# --- structured masks (noise_shape): each returns (applied, stored): the decisions applied to x
# (broadcastable to x.shape) and the stored mask (of the noise shape) ------------------------


def _noise_broadcast_order(x_shape, ns, p, seed, offset):
    # mask element j draws the stream position of its first broadcast element in x's C order
    # (offset + flat index in x), not offset + j: shared, independent, the right rate, not ours
    idx = np.asarray(np.ravel_multi_index(np.indices(ns).reshape(len(ns), -1), x_shape), dtype=np.uint64)
    m = (words_for_positions(idx + np.uint64(offset), seed) < keep_threshold(p)).reshape(ns)
    return m, m


def _noise_redrawn_per_element(x_shape, ns, p, seed, offset):
    # ignores the sharing: one decision per element of x; the stored mask is its first slice
    full = _flat(_correct)(x_shape, p, seed, offset)
    return full, full[tuple(slice(0, 1) if k == 1 else slice(None) for k in ns)].reshape(ns)


def _noise_and_reduced(x_shape, ns, p, seed, offset):
    # per-element decisions reduced to the mask by "all" over the shared axes (kept only if
    # every element of the group would be): all or nothing, but the keep rate is q**group
    full = _flat(_correct)(x_shape, p, seed, offset)
    shared = tuple(d for d, k in enumerate(ns) if k == 1 and x_shape[d] != 1)
    m = np.all(full, axis=shared, keepdims=True) if shared else full
    return m, m.reshape(ns)


def _threshold_le(numel, p, seed, offset):
    # keep iff u <= t: the element whose word equals the threshold is kept (off by one)
    return stream_words(numel, seed, offset) <= keep_threshold(p)


def _threshold_minus_one(numel, p, seed, offset):
    # keep iff u < t - 1: the element whose word is t - 1 is dropped (off by one the other way)
    t = int(keep_threshold(p))
    return stream_words(numel, seed, offset).astype(np.int64) < t - 1


def _threshold_float32(numel, p, seed, offset):
    # the threshold computed from float32(1 - p): a 24-bit significand, a grid of up to 256 words
    t = int(np.floor(np.float64(np.float32(1.0 - p)) * 4294967296.0))
    return stream_words(numel, seed, offset).astype(np.int64) < t


def _scale_float32_division(p, dtype):
    # float32 (and the 16-bit formats' float32 arithmetic): float32(1) / float32(1 - p), two roundings
    dtype = np.dtype(dtype)
    if p >= 1:
        return dtype.type(0.0)
    if dtype == np.float32:
        return np.float32(1) / np.float32(1.0 - p)
    return scale_for(p, dtype)


def _scale_ulp_float64(p, dtype):
    # float64: the scale one ulp too high (e.g. a constant folded differently); float32 right
    s = scale_for(p, dtype)
    if np.dtype(dtype) == np.float64 and p < 1:
        return np.nextafter(s, np.float64(np.inf))
    return s


def _one(p, dtype):
    return np.dtype(dtype).type(1.0)


def _inverse_p(p, dtype):
    return np.dtype(dtype).type(1.0 / p) if p > 0 else np.dtype(dtype).type(0.0)


class Mutant:
    # the whole API: float32/64 and the 16-bit formats, any noise_shape, out=x (nothing to probe)
    DROPOUT_CAPABILITIES = {"dtypes": ("float32", "float64", "float16", "bfloat16"), "noise_shape": True,
                            "inplace": True}
    DROPOUT_CONTRACT = False     # judged statistically by default

    def __init__(self, name, bug, mask_fn=_correct, scale_fn=scale_for, shaped=None, tiny_p=False,
                 noise_fn=None, half=None, out_ignored=False, contract=False):
        self.name, self.bug = name, bug
        self.NAME = f"mutant:{name}"
        self._mask = shaped or _flat(mask_fn)
        self._scale, self._tiny_p = scale_fn, tiny_p
        self._noise, self._half, self._out_ignored = noise_fn, half, out_ignored
        if contract:  # claims our stream: judged at level contract (the bug is one of exactness)
            self.DROPOUT_CONTRACT = True

    @property
    def level(self) -> str:
        return "contract" if self.DROPOUT_CONTRACT else "statistical"

    def __repr__(self):
        return self.NAME

    def _apply(self, x, kept, p):
        if x.dtype.itemsize != 2:
            return (x * kept.astype(x.dtype)) * self._scale(p, x.dtype)
        # 16-bit: float32 arithmetic and one rounding (docs/RNG_STREAM.md), or the mutant's bug
        s32 = np.float32(self._scale(p, np.float32))
        if self._half == "scale_rounded":  # the scale rounded to the 16-bit format first: two roundings
            s32 = np.float32(np.asarray(self._scale(p, np.float32)).astype(x.dtype))
        with np.errstate(invalid="ignore", over="ignore"):
            t = (x.astype(np.float32) * kept.astype(np.float32)) * s32
            if self._half == "saturating":  # a saturating conversion (satfinite): +-inf -> +-max
                import ml_dtypes
                big = np.float32(ml_dtypes.finfo(x.dtype).max)
                t = np.where(np.isnan(t), t, np.clip(t, -big, big))
            return t.astype(x.dtype)

    def _decisions(self, shape, ns, p, seed, offset):
        """(applied, stored): applied broadcasts over ``shape``; stored has the mask's shape."""
        if self._tiny_p and p < 1e-5:  # a "fast path" that skips dropout for tiny p
            m = np.ones(shape if ns is None else ns, bool)
            return m, m
        if ns is None or tuple(ns) == tuple(shape):
            m = self._mask(tuple(shape), float(p), int(seed), int(offset))
            return m, m
        if self._noise is not None:
            return self._noise(tuple(shape), tuple(ns), float(p), int(seed), int(offset))
        m = self._mask(tuple(ns), float(p), int(seed), int(offset))  # the mask's own C order
        return m, m

    def _out(self, y, out):
        if out is None or self._out_ignored:
            return y
        np.copyto(out, y)
        return out

    def dropout_forward(self, x, p, *, seed, offset=0, training=True, mask_format="bool", out=None,
                        noise_shape=None):
        x = np.asarray(x)
        if not 0 <= p <= 1:
            raise ValueError(f"p must be in [0, 1], got {p}")
        if not training:
            return x.copy(), None
        ns = None if noise_shape is None else tuple(x.shape[d] if k is None else k for d, k in enumerate(noise_shape))
        applied, stored = self._decisions(x.shape, ns, p, seed, offset)
        y = self._out(self._apply(x, applied, p), out)
        if mask_format == "bool":
            return y, stored
        if mask_format == "bits":
            return y, pack_bits(stored)
        return y, None

    def dropout_backward(self, grad_y, p, *, mask=None, seed=None, offset=0, out=None, noise_shape=None):
        g = np.asarray(grad_y)
        ns = None if noise_shape is None else tuple(g.shape[d] if k is None else k for d, k in enumerate(noise_shape))
        mshape = g.shape if ns is None else ns
        if mask is None:
            kept = self._decisions(g.shape, ns, p, seed, offset)[0]
        elif mask.dtype == np.bool_:
            kept = mask
        else:
            kept = unpack_bits(mask, mshape)
        return self._out(self._apply(g, kept, p), out)


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
    # the coverage of issue 10: each caught only by the check added for it
    Mutant("pairs_share_decision", "neighbours 2k, 2k+1 share one keep decision (each keep rate right): "
           "the correlation MC dropout and dropout-as-L2 assume away", mask_fn=_pairs_share),
    Mutant("same_mask_across_batch", "one mask for x[0] broadcast over axis 0 (right for 1-D input)",
           shaped=_same_mask_across_batch),
    Mutant("offset_rounded_to_block", "the offset is rounded down to a multiple of 4",
           mask_fn=_offset_rounded_to_block),
    Mutant("position_32bit", "the stream position is held in 32 bits (g mod 2**32)",
           mask_fn=_position_32bit),
    Mutant("counter_high_word_dropped", "the block counter's high word is 0 (blocks b, b + 2**32 coincide)",
           mask_fn=_counter_high_word_dropped),
    Mutant("tile_overlap", "tiles of 2**16 elements laid 64512 words apart: every 2**16 elements, "
           "1024 reuse the words of the elements 1024 further on", mask_fn=_tile_overlap),
    Mutant("seed_xor_folded", "the seed folded to 32 bits: key (lo ^ hi, 0)", mask_fn=_seed_xor_folded),
    Mutant("tiny_p_skipped", "a fast path returns x unchanged when p < 1e-5", tiny_p=True),
    # issue 11: noise_shape, the 16-bit formats, in place; each caught only by the check added for it
    Mutant("noise_broadcast_order", "noise_shape: mask element j draws the position of its first element "
           "in x's C order, not offset + j (claims our stream)", noise_fn=_noise_broadcast_order, contract=True),
    Mutant("noise_redrawn_per_element", "noise_shape ignored for the output: one decision per element of x",
           noise_fn=_noise_redrawn_per_element),
    Mutant("noise_and_reduced", "noise_shape mask = all() of per-element decisions over the shared axes "
           "(keep rate q**group)", noise_fn=_noise_and_reduced),
    Mutant("half_scale_rounded", "16-bit: the scale rounded to the 16-bit format first (two roundings)",
           half="scale_rounded"),
    Mutant("half_saturating", "16-bit: a saturating conversion (satfinite): inf and overflow become +-max",
           half="saturating"),
    Mutant("out_ignored", "out=x is accepted but not written: a new array is returned", out_ignored=True),
    # issue 21: a blind spot of the lag tests (0 of 5 seeds at 2**23)
    Mutant("byte_rotations", "four neighbours share one word, each through a different byte rotation of it",
           mask_fn=_byte_rotations),
    # issue 21: exactness at the edges (claim our stream; statistically perfect, only exactness
    # crafted from the stream can tell; each differs from the contract for ~1 word in 2**32 or at
    # a few p): caught by the crafted contract checks on every seed
    Mutant("threshold_le", "keep iff u <= t: the word equal to the threshold is kept (off by one; claims our "
           "stream)", mask_fn=_threshold_le, contract=True),
    Mutant("threshold_minus_one", "keep iff u < t - 1: the word t - 1 is dropped (off by one; claims our stream)",
           mask_fn=_threshold_minus_one, contract=True),
    Mutant("threshold_float32", "the threshold computed from float32(1 - p) (claims our stream)",
           mask_fn=_threshold_float32, contract=True),
    Mutant("scale_float32_division", "float32 scale float32(1) / float32(1 - p), two roundings (differs at "
           "p = 0.15, 0.45, 1e-6; claims our stream)", scale_fn=_scale_float32_division, contract=True),
    Mutant("scale_ulp_float64", "float64 scale one ulp above 1/(1-p) (claims our stream)",
           scale_fn=_scale_ulp_float64, contract=True),
)

BY_NAME = {m.name: m for m in MUTANTS}
globals().update(BY_NAME)  # reference.conformance.mutants:no_scale is an IMPL string

# The checks designated to catch each mutant (test_mutants.py asserts it at the default
# sizes; `python -m reference.conformance.mutants` prints every check on every mutant).
CATCHERS = {
    "no_scale": ("mean_forward/p=0.5", "variance/p=0.5", "semantic/kept_scaled"),
    "scale_1_over_p": ("mean_forward/p=0.1", "mean_backward_regenerate/p=0.9"),
    "threshold_from_p": ("keep_rate/p=0.1", "keep_rate/p=0.99"),
    "eight_bit_threshold": ("keep_rate/p=0.01", "keep_rate/p=1e-06"),
    "word0_for_block": ("lag/p=0.5/L=1", "lag/p=0.5/L=2"),
    "ignores_seed_high": ("cross_call/seed+2**32",),
    "ignores_offset": ("cross_call/offset+n",),
    "reuses_previous_counter": ("lag/p=0.5/L=4",),
    "neighbour_dependent": ("lag/p=0.5/L=1", "lag/p=0.1/L=1"),
    "pairs_share_decision": ("lag/p=0.5/L=1", "lag/p=0.1/L=1"),
    "same_mask_across_batch": ("multidim/2d/axis=0", "multidim/3d/axis=0", "multidim/4d/axis=0"),
    "offset_rounded_to_block": ("semantic/offset_shift",),
    "position_32bit": ("cross_call/offset+2**32",),
    "counter_high_word_dropped": ("cross_call/offset+2**34",),
    "tile_overlap": ("periodicity/max_lag=65536",),
    "seed_xor_folded": ("cross_call/seed^(2**32+1)",),
    "tiny_p_skipped": ("keep_rate/p=1e-06",),
    "noise_broadcast_order": ("contract/noise_shape",),
    "noise_redrawn_per_element": ("semantic/noise_shape",),
    "noise_and_reduced": ("noise_keep_rate/channel/p=0.1", "noise_keep_rate/N1H1/p=0.5"),
    "half_scale_rounded": ("half_mean/float16/p=0.01", "half_mean/bfloat16/p=0.04"),
    "half_saturating": ("semantic/float16", "semantic/bfloat16"),
    "out_ignored": ("semantic/inplace",),
    "byte_rotations": ("byte_sharing/lags=1..3",),
    "threshold_le": ("contract/keep_threshold_edges",),
    "threshold_minus_one": ("contract/keep_threshold_edges",),
    "threshold_float32": ("contract/keep_threshold_edges",),
    "scale_float32_division": ("contract/scale_rounding",),
    "scale_ulp_float64": ("contract/scale_rounding", "contract/forward"),
}


def fmt_pvalue(pv) -> str:
    if pv is None:
        return "-"
    return "<1e-300" if pv == 0.0 else f"{pv:.2g}"


def matrix(stat_seed="fixed", mutants=MUTANTS, quick=False):
    """{mutant name: Run} of every check on the scaffold (level contract: every check) and on
    every mutant at its level (statistical, or contract for a mutant that claims our stream)."""
    # imported here, not at the top: a mutant loaded as an IMPL string needs no battery (the
    # runner never imports this module, so there is no cycle either way)
    from reference.conformance.runner import run

    out = {CORRECT.name: run(CORRECT, level="contract", stat_seed=stat_seed, quick=quick)}
    out.update({m.name: run(m, level=m.level, stat_seed=stat_seed, quick=quick) for m in mutants})
    return out


def main():
    import sys

    runs = matrix(quick="--quick" in sys.argv)
    names = list(runs)
    first = runs[names[0]]
    alphas = sorted({f"{r.alpha:.3g}" for r in runs.values()})
    print(f"Every check (rows) on the bug-free scaffold (level contract: every check) and on every mutant "
          f"(columns; level statistical, or contract for a mutant that claims our stream): p-value, or "
          f"pass/FAIL for the deterministic checks, - where not at that level; **bold** = rejected "
          f"(ALPHA = {' or '.join(alphas)}, by the number of hypotheses of the run).\n")
    print("| check | " + " | ".join(names) + " |")
    print("|---|" + "---|" * len(names))
    by_name = {n: {r.name: r for r in runs[n].results} for n in names}
    for r0 in first.results:
        cells = []
        for n in names:
            r = by_name[n].get(r0.name)
            if r is None:
                cells.append("-")
                continue
            cell = fmt_pvalue(r.p_value) if r.p_value is not None else r.status
            cells.append(f"**{cell}**" if r.passed is False else cell)
        print(f"| {r0.name} | " + " | ".join(cells) + " |")
    print()
    print("| mutant | level | bug | caught by |")
    print("|---|---|---|---|")
    for mu in MUTANTS:
        caught = [r.name for r in runs[mu.name].results if r.passed is False]
        print(f"| {mu.name} | {mu.level} | {mu.bug} | {len(caught)}: " + ", ".join(caught) + " |")
    from reference.conformance import stateful_mutants as sm
    from reference.conformance.runner import run

    print()
    print("Stateful mutants (reference/conformance/stateful_mutants.py: a generator held by the implementation, "
          "f(x, p) with reseed and set_threads; level statistical, default sizes):")
    print()
    print("| stateful mutant | bug | caught by |")
    print("|---|---|---|")
    for name, impl in [("stateful_scaffold", sm.SCAFFOLD), *sm.MUTANTS.items()]:
        caught = [r.name for r in run(impl, quick="--quick" in sys.argv).results if r.passed is False]
        bug = impl.description.removeprefix("stateful mutant: ")
        print(f"| {name} | {bug} | {len(caught)}: " + ", ".join(caught) + " |")


if __name__ == "__main__":
    main()


