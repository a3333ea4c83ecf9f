"""PROTOTYPE: a faster CPU tile path for the dropout stream (issue 12). Not wired into the API.

Same bits as :mod:`reference.stream` (tests/test_philox_cpu.py holds it to them). The Philox
round is *not* rewritten here: every fill calls the one round of
:func:`reference.stream.make_philox` on ``uint64`` carriers, exactly as kernels/cpu.py does.
What changes is what surrounds it:

* **hoisted high counter word**: within a run of blocks that does not cross a multiple of
  2**32, ``c1 = b >> 32`` is one scalar, so LLVM folds round 1's second product
  (``M1 * c2 = 0``) and hoists round 2's first one (``M0 * (c1 ^ k0)``): 16 vector products
  per block instead of 20 (and no 64-bit ``vpmullq``). A tile that crosses such a multiple
  is split in two runs.
* **words written in stream order** straight from the Philox loop (no SoA scratch and no
  interleave pass).
* **an apply loop that vectorizes**: the tile's slices are taken first, so the loop indexes
  from 0 and LLVM sees no possibly-negative index (kernels/cpu.py's ``y[start + e]`` compiles
  to ``vgatherqps``/``vscatterqps``), the keep decision is a 32-bit unsigned compare, and the
  ``0``/``1`` factors have the input's dtype (kernels/cpu.py's ``scale - scale + 1`` is a
  float64, so float32 data is widened to double, multiplied and narrowed: the same bits,
  since a product of two floats is exact in double, at half the vector width).

:func:`make_regen_kernel` is the same kernel as ``kernels.cpu._make_regen_kernel`` (same
arguments, same tiles) with those pieces in; see bench/philox_speed.py for the timings.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from reference.stream import MASK32, SHIFT32, make_philox, mulhilo64

TILE = 2048  # as kernels/cpu.py
_SCRATCH = TILE + 8
_TWO32 = 1 << 32

_philox = njit(inline="always")(make_philox(njit(inline="always")(mulhilo64), np.uint64))

_MODE_NONE, _MODE_BOOL, _MODE_BITS = 0, 1, 2
_PACK8 = np.uint64(0x0102040810204080)


@njit(inline="always")
def _run_soa(w0, w1, w2, w3, at, lo, hi, n, k0, k1):
    """Blocks ``hi * 2**32 + lo + j``, ``j < n``, into ``w*[at + j]``; ``lo + n <= 2**32``."""
    zero = np.uint64(0)
    k0, k1 = k0 & MASK32, k1 & MASK32  # no-ops on valid keys; LLVM then knows they fit in 32 bits
    for j in range(n):
        # ``& MASK32``: a no-op here (lo + n <= 2**32) that lets LLVM use vpmuludq, not vpmullq
        r0, r1, r2, r3 = _philox((lo + np.uint64(j)) & MASK32, hi, zero, zero, k0, k1)
        w0[at + j] = np.uint32(r0)
        w1[at + j] = np.uint32(r1)
        w2[at + j] = np.uint32(r2)
        w3[at + j] = np.uint32(r3)


@njit(inline="never", nogil=True)
def fill_words(w0, w1, w2, w3, first_block, n_blocks, k0, k1):
    """Drop-in for ``kernels.cpu._fill_words``: Philox words of blocks
    ``first_block .. first_block + n_blocks - 1`` into four ``uint32`` arrays (SoA)."""
    lo = first_block & MASK32
    hi = first_block >> SHIFT32
    n1 = min(n_blocks, np.int64(np.uint64(_TWO32) - lo))  # blocks before the next multiple of 2**32
    # Slicing from 0 lets LLVM see nonnegative indices (no wraparound checks in the loop).
    _run_soa(w0[:n1], w1[:n1], w2[:n1], w3[:n1], 0, lo, hi, n1, k0, k1)
    if n1 < n_blocks:  # the run crosses into the next 2**32 blocks: c1 grows by one
        n2 = n_blocks - n1
        _run_soa(w0[n1:n_blocks], w1[n1:n_blocks], w2[n1:n_blocks], w3[n1:n_blocks], 0,
                 np.uint64(0), hi + np.uint64(1), n2, k0, k1)


@njit(inline="always")
def _run_stream(words, lo, hi, n, k0, k1):
    zero = np.uint64(0)
    k0, k1 = k0 & MASK32, k1 & MASK32
    for j in range(n):
        r0, r1, r2, r3 = _philox((lo + np.uint64(j)) & MASK32, hi, zero, zero, k0, k1)
        words[4 * j] = np.uint32(r0)
        words[4 * j + 1] = np.uint32(r1)
        words[4 * j + 2] = np.uint32(r2)
        words[4 * j + 3] = np.uint32(r3)


@njit(inline="never", nogil=True)
def fill_stream(words, first_block, n_blocks, k0, k1):
    """Words of blocks ``first_block ..`` in stream order: ``words[4 j + q]`` is word ``q`` of
    block ``first_block + j`` (what ``_fill_words`` + ``_interleave`` produce, in one pass)."""
    lo = first_block & MASK32
    hi = first_block >> SHIFT32
    n1 = min(n_blocks, np.int64(np.uint64(_TWO32) - lo))
    _run_stream(words[:4 * n1], lo, hi, n1, k0, k1)
    if n1 < n_blocks:
        _run_stream(words[4 * n1:4 * n_blocks], np.uint64(0), hi + np.uint64(1), n_blocks - n1, k0, k1)


@njit(inline="always")
def tile_words(words, offset, start, count, k0, k1):
    """Fill ``words`` so that element ``start + e`` has word ``words[e + skip]``; return skip."""
    g0 = offset + np.uint64(start)
    first_block = g0 >> np.uint64(2)
    last_block = (g0 + np.uint64(count - 1)) >> np.uint64(2)
    n_blocks = np.int64(last_block - first_block) + 1
    fill_stream(words, first_block, n_blocks, k0, k1)
    return np.int64(g0 & np.uint64(3))


def threshold_words(t: int) -> tuple[np.uint32, bool]:
    """``u < t`` for a 32-bit word ``u`` and ``t`` in ``[0, 2**32]`` as ``(u < t32) | all_kept``."""
    t = int(t)
    return np.uint32(min(t, _TWO32 - 1)), t >= _TWO32


def make_regen_kernel(mode: int, loop):
    """``kernels.cpu._make_regen_kernel`` with the fill and apply loops of this module.

    Arguments as there, except the threshold: ``t32, all_kept`` from :func:`threshold_words`
    (the ``0``/``1`` factors are made inside, in the data's dtype).
    """

    @njit(parallel=loop is prange, nogil=True)
    def kernel(x, y, mask_bool, mask_bits, k0, k1, offset, t32, all_kept, scale, n_chunks):
        n = x.size
        n_tiles = (n + TILE - 1) // TILE
        zero = scale * np.float32(0.0)  # the data's dtype (float32 * float32 stays float32)
        one = zero + np.float32(1.0)
        for c in loop(n_chunks):
            words = np.empty(_SCRATCH, dtype=np.uint32)
            keep = np.zeros(TILE, dtype=np.uint8)
            keep64 = keep.view(np.uint64)
            for tile in range(c * n_tiles // n_chunks, (c + 1) * n_tiles // n_chunks):
                start = tile * TILE
                count = min(TILE, n - start)
                skip = tile_words(words, offset, start, count, k0, k1)
                ws = words[skip:skip + count]
                xs = x[start:start + count]
                ys = y[start:start + count]
                if mode == _MODE_BITS:
                    for e in range(count):
                        kept = (ws[e] < t32) | all_kept
                        keep[e] = kept
                        ys[e] = (xs[e] * (one if kept else zero)) * scale
                    keep[count:] = 0
                    mb = mask_bits[start >> 3:(start >> 3) + ((count + 7) >> 3)]
                    for q in range((count + 7) >> 3):
                        mb[q] = (keep64[q] * _PACK8) >> np.uint64(56)
                elif mode == _MODE_BOOL:
                    ms = mask_bool[start:start + count]
                    for e in range(count):
                        kept = (ws[e] < t32) | all_kept
                        ms[e] = kept
                        ys[e] = (xs[e] * (one if kept else zero)) * scale
                else:
                    for e in range(count):
                        kept = (ws[e] < t32) | all_kept
                        ys[e] = (xs[e] * (one if kept else zero)) * scale

    return kernel


REGEN = {mode: (make_regen_kernel(mode, prange), make_regen_kernel(mode, range))
         for mode in (_MODE_NONE, _MODE_BOOL, _MODE_BITS)}
