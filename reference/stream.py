"""The dropout random stream: Philox4x32-10 keyed by seed, indexed by element.

This module is the single source of truth for every backend (see docs/RNG_STREAM.md):

* :func:`make_philox` writes the Philox round once. On ``uint64`` carriers that hold
  32-bit values (:data:`philox4x32_10`) the same source runs vectorized over NumPy arrays
  (the reference) and compiled by ``numba.njit`` (the CPU kernels); the CUDA kernels
  build it with a 32-bit ``mulhi`` for ``numba.cuda.jit(device=True)``.
* :func:`make_positions` writes the map from a stream position to its Philox block, the
  block's counter words and the word (lane) within the block once, for the same three targets.
* :func:`keep_threshold` and :func:`scale_for` define the keep decision and the scale.

Every constant is a ``np.uint64`` so that Numba never promotes a mixed signed/unsigned
expression to float64, and every product ``M * c`` of two 32-bit values fits in 64 bits,
so nothing overflows (the CUDA simulator stays quiet).
"""

from __future__ import annotations

import numpy as np

# Philox4x32 multipliers and Weyl key increments (Salmon et al., SC'11; Random123).
PHILOX_M0 = np.uint64(0xD2511F53)
PHILOX_M1 = np.uint64(0xCD9E8D57)
PHILOX_W0 = np.uint64(0x9E3779B9)
PHILOX_W1 = np.uint64(0xBB67AE85)
MASK32 = np.uint64(0xFFFFFFFF)
SHIFT32 = np.uint64(32)
PHILOX_ROUNDS = 10

STREAM_END = 2**64  # positions g live in [0, 2**64)


def mulhilo64(a, b):
    """High and low 32-bit halves of the product of two 32-bit values held in ``uint64``."""
    prod = a * b
    return prod >> SHIFT32, prod & MASK32


def make_philox(mulhilo, word):
    """Philox4x32-10 built on a ``mulhilo`` and a ``word`` type that holds a 32-bit value.

    The round is written here once. NumPy and the Numba CPU kernels use
    ``(mulhilo64, np.uint64)``: every value fits, so nothing overflows and LLVM vectorizes
    the products as ``vpmuludq``. The CUDA kernels pass a 32-bit ``mulhi`` and ``np.uint32``,
    so that the GPU runs 32-bit multiplies (see kernels/cuda.py).
    """
    m0, m1 = word(PHILOX_M0), word(PHILOX_M1)

    def philox4x32_10(c0, c1, c2, c3, k0, k1):
        """Philox4x32-10 of counter ``(c0, c1, c2, c3)`` under key ``(k0, k1)``; word 0 first."""
        for _ in range(PHILOX_ROUNDS):
            hi0, lo0 = mulhilo(m0, c0)
            hi1, lo1 = mulhilo(m1, c2)
            c0, c1, c2, c3 = word(hi1 ^ c1 ^ k0), word(lo1), word(hi0 ^ c3 ^ k1), word(lo0)
            # Bumped in 64 bits, so no 32-bit sum ever wraps (NumPy scalars would warn);
            # the tenth bump is never used, but a uniform loop unrolls cleanly.
            k0 = word((np.uint64(k0) + PHILOX_W0) & MASK32)
            k1 = word((np.uint64(k1) + PHILOX_W1) & MASK32)
        return c0, c1, c2, c3

    return philox4x32_10


#: Philox4x32-10 on ``uint64`` carriers: scalars or arrays (NumPy), or compiled by ``numba.njit``.
philox4x32_10 = make_philox(mulhilo64, np.uint64)


def make_positions(compile=None):
    """``(block_and_lane, counter, block_span)``: where stream positions lie, written once.

    Position ``g`` (``uint64``) takes word ``lane = g % 4`` of Philox block ``b = g // 4``, whose
    counter is ``(b & 0xFFFFFFFF, b >> 32, 0, 0)``. ``compile`` makes each function callable
    from the target's compiled code (``numba.njit(inline="always")`` for the CPU kernels,
    ``numba.cuda.jit(device=True, inline=True)`` for the GPU); None gives the plain functions,
    which work on NumPy ``uint64`` scalars and arrays.
    """
    compile = compile or (lambda f: f)

    def block_and_lane(g):
        """Philox block and word index (0..3) of stream position ``g``."""
        return g >> np.uint64(2), g & np.uint64(3)

    def counter(b):
        """The two non-zero counter words ``(c0, c1)`` of block ``b``."""
        return b & MASK32, b >> SHIFT32

    where = compile(block_and_lane)

    def block_span(g0, count):
        """``(first_block, n_blocks, skip)`` of the ``count >= 1`` positions from ``g0``: the
        position ``g0 + e`` has word ``4 * (block - first_block) + lane``, i.e. ``e + skip``
        in the blocks' words laid out in stream order."""
        first_block, skip = where(g0)
        last_block, _ = where(g0 + np.uint64(count - 1))
        return first_block, np.int64(last_block - first_block) + 1, np.int64(skip)

    return where, compile(counter), compile(block_span)


#: The position map on NumPy ``uint64`` scalars and arrays (the reference and host code).
block_and_lane, counter, block_span = make_positions()


def splitmix64(x: int) -> int:
    """One SplitMix64 output for ``x``: a bijective 64-bit mix (derives seeds from seeds; not
    part of the stream itself: the generator's per-call seeds and the checker's 32-bit seeds)."""
    m = (1 << 64) - 1
    x = (x + 0x9E3779B97F4A7C15) & m
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & m
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & m
    return x ^ (x >> 31)


def split_seed(seed: int) -> tuple[np.uint64, np.uint64]:
    """Philox key words ``(k0, k1)`` of a 64-bit seed: low half first."""
    return np.uint64(seed & 0xFFFFFFFF), np.uint64(seed >> 32)


def keep_threshold(p: float) -> np.uint64:
    """Integer threshold ``t = floor((1 - p) * 2**32)``: keep an element when its word < t.

    ``(1 - p) * 2**32`` is exact in double precision (a power-of-two scaling), so ``t`` is
    an exact integer in ``[0, 2**32]``; ``p = 0`` keeps all, ``p = 1`` keeps none.
    """
    return np.uint64(int(np.floor((1.0 - float(p)) * 4294967296.0)))


def scale_for(p: float, dtype) -> np.floating:
    """``1 / (1 - p)`` in double precision, rounded once to ``dtype``; 0 for ``p = 1``."""
    dtype = np.dtype(dtype)
    if p >= 1.0:
        return dtype.type(0.0)
    return dtype.type(1.0 / (1.0 - float(p)))


def words_for_positions(g: np.ndarray, seed: int) -> np.ndarray:
    """Random word (``uint32``) of each stream position ``g`` (``uint64`` array): word ``g % 4``
    of Philox applied to counter ``(b & 0xFFFFFFFF, b >> 32, 0, 0)`` with ``b = g // 4``."""
    b, lane = block_and_lane(np.asarray(g, dtype=np.uint64))
    zero = np.zeros_like(b)
    k0, k1 = split_seed(seed)
    w = philox4x32_10(*counter(b), zero, zero, k0, k1)
    return np.choose(lane.astype(np.intp), w).astype(np.uint32)
