"""The CPU's tile fill of the dropout stream: Philox words of consecutive counter blocks.

The Philox round is *not* rewritten here: every fill calls the one round of
:func:`reference.stream.make_philox` on ``uint64`` carriers. What this module adds is what
surrounds it, so that LLVM vectorizes the round with ``vpmuludq`` (tests/test_philox_cpu.py
holds the words to ``reference.stream``'s and checks the assembly):

* **hoisted high counter word**: within a run of blocks that does not cross a multiple of
  2**32, ``c1 = b >> 32`` is one scalar, so LLVM folds round 1's second product
  (``M1 * c2 = 0``) and hoists round 2's first one (``M0 * (c1 ^ k0)``): 18 vector products
  per block instead of 20, and ``vpmuludq`` rather than the 64-bit ``vpmullq`` (the
  ``& MASK32`` no-ops tell LLVM the values fit in 32 bits). A run that crosses such a
  multiple is split in two.
* **words written in stream order** straight from the Philox loop (no structure-of-arrays
  scratch and no interleave pass).

Measured on the 2-core development machine (AMD Zen 5, AVX-512; one thread, L1-resident
scratch, ``python -m bench.studies.philox_speed``): about 3.6 cycles per 4-word block, against a
floor of about 2.1 (135 instructions per 16 blocks, 2.25 ``vpmuludq`` per block at 2 per
cycle); 7.9 to 9.1 cycles per block when compiled for AVX2 only.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from reference.stream import MASK32, make_philox, make_positions, mulhilo64

_TWO32 = 1 << 32

#: reference/stream.py's Philox round and position map, compiled for the CPU (inlined).
philox = njit(inline="always")(make_philox(njit(inline="always")(mulhilo64), np.uint64))
block_and_lane, counter, block_span = make_positions(njit(inline="always"))


@njit(inline="always")
def _run_soa(w0, w1, w2, w3, at, lo, hi, n, k0, k1):
    """Blocks ``hi * 2**32 + lo + j``, ``j < n``, into ``w*[at + j]``; ``lo + n <= 2**32``."""
    zero = np.uint64(0)
    k0, k1 = k0 & MASK32, k1 & MASK32  # no-ops on valid keys; LLVM then knows they fit in 32 bits
    for j in range(n):
        # ``& MASK32``: a no-op here (lo + n <= 2**32) that lets LLVM use vpmuludq, not vpmullq
        r0, r1, r2, r3 = philox((lo + np.uint64(j)) & MASK32, hi, zero, zero, k0, k1)
        w0[at + j] = np.uint32(r0)
        w1[at + j] = np.uint32(r1)
        w2[at + j] = np.uint32(r2)
        w3[at + j] = np.uint32(r3)


@njit(inline="never", nogil=True)
def fill_words(w0, w1, w2, w3, first_block, n_blocks, k0, k1):
    """Philox words of blocks ``first_block .. first_block + n_blocks - 1`` into four ``uint32``
    arrays, one per word (structure of arrays; bench/studies/philox_speed.py compares it with
    :func:`fill_stream`, which the kernels use)."""
    lo, hi = counter(first_block)
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
        r0, r1, r2, r3 = philox((lo + np.uint64(j)) & MASK32, hi, zero, zero, k0, k1)
        words[4 * j] = np.uint32(r0)
        words[4 * j + 1] = np.uint32(r1)
        words[4 * j + 2] = np.uint32(r2)
        words[4 * j + 3] = np.uint32(r3)


@njit(inline="never", nogil=True)
def fill_stream(words, first_block, n_blocks, k0, k1):
    """Words of blocks ``first_block ..`` in stream order: ``words[4 j + q]`` is word ``q`` of
    block ``first_block + j`` (:func:`fill_words`' four arrays interleaved, in one pass)."""
    lo, hi = counter(first_block)
    n1 = min(n_blocks, np.int64(np.uint64(_TWO32) - lo))
    _run_stream(words[:4 * n1], lo, hi, n1, k0, k1)
    if n1 < n_blocks:
        _run_stream(words[4 * n1:4 * n_blocks], np.uint64(0), hi + np.uint64(1), n_blocks - n1, k0, k1)


@njit(inline="always")
def tile_words(words, offset, start, count, k0, k1):
    """Fill ``words`` so that element ``start + e`` has word ``words[e + skip]``; return skip."""
    first_block, n_blocks, skip = block_span(offset + np.uint64(start), count)
    fill_stream(words, first_block, n_blocks, k0, k1)
    return skip
