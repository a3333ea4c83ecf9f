"""Numba CPU-parallel dropout kernels (``@njit(parallel=True)``, ``prange``).

Bit-identical to :mod:`reference`. The work is split into tiles of ``TILE`` elements (a
multiple of 8, so a ``"bits"`` byte never straddles two tiles). For each tile one
vectorizable loop runs Philox over the tile's counters into a per-chunk scratch of words
(structure of arrays, no branches: LLVM emits ``vpmuludq``), and a second loop applies the
keep decision. Tiles are a fixed function of the element index, so neither the thread count
nor the chunking changes a bit of the result.
"""

from __future__ import annotations

import hashlib

import numpy as np
from numba import njit, prange, get_num_threads

from reference import stream as _stream, validate as v
from reference.stream import MASK32, SHIFT32, keep_threshold, make_philox, mulhilo64, scale_for, split_seed

from . import threads

NAME = "cpu"
TILE = 2048  # elements per tile; 512 Philox blocks, scratch fits in L1
_SCRATCH = TILE + 8  # a tile starting mid-block needs one block more

# Numba's cache knows only this file's time stamp; the kernels inline the stream's Philox
# round, so its source hash rides in each kernel's closure (part of the cache key).
with open(_stream.__file__, "rb") as _f:
    _CACHE_KEY = hashlib.sha256(_f.read()).hexdigest()

_philox = njit(inline="always")(make_philox(njit(inline="always")(mulhilo64), np.uint64))

_MODE_NONE, _MODE_BOOL, _MODE_BITS = 0, 1, 2
_PACK8 = np.uint64(0x0102040810204080)
_MODES = {None: _MODE_NONE, "bool": _MODE_BOOL, "bits": _MODE_BITS}


@njit(inline="never", nogil=True)
def _fill_words(w0, w1, w2, w3, first_block, n_blocks, k0, k1):
    """Philox words of blocks ``first_block .. first_block + n_blocks - 1`` (SoA)."""
    zero = np.uint64(0)
    for j in range(n_blocks):
        b = first_block + np.uint64(j)
        r0, r1, r2, r3 = _philox(b & MASK32, b >> SHIFT32, zero, zero, k0, k1)
        w0[j] = np.uint32(r0)
        w1[j] = np.uint32(r1)
        w2[j] = np.uint32(r2)
        w3[j] = np.uint32(r3)


@njit(inline="never", nogil=True)
def _interleave(words, w0, w1, w2, w3, n_blocks):
    for j in range(n_blocks):
        words[4 * j] = w0[j]
        words[4 * j + 1] = w1[j]
        words[4 * j + 2] = w2[j]
        words[4 * j + 3] = w3[j]


@njit(inline="always")
def _tile_words(words, w0, w1, w2, w3, offset, start, count, k0, k1):
    """Fill ``words`` so that element ``start + e`` has word ``words[e + skip]``; return skip."""
    g0 = offset + np.uint64(start)
    first_block = g0 >> np.uint64(2)
    last_block = (g0 + np.uint64(count - 1)) >> np.uint64(2)
    n_blocks = np.int64(last_block - first_block) + 1
    _fill_words(w0, w1, w2, w3, first_block, n_blocks, k0, k1)
    _interleave(words, w0, w1, w2, w3, n_blocks)
    return np.int64(g0 & np.uint64(3))


def _make_regen_kernel(mode: int, loop):
    """Forward (or backward without a stored mask): draw, apply, and store the mask as ``mode`` says.

    ``mode`` is baked in as a constant, so each specialization keeps only its own loop;
    ``loop`` is ``prange`` (the parallel compilation) or ``range`` (the serial one).
    """
    cache_key = _CACHE_KEY

    @njit(parallel=loop is prange, nogil=True, cache=True)
    def kernel(x, y, mask_bool, mask_bits, k0, k1, offset, t, scale, n_chunks):
        _ = cache_key  # a change to the stream's source invalidates the on-disk cache
        n = x.size
        n_tiles = (n + TILE - 1) // TILE
        one = scale - scale + 1
        zero = scale - scale
        t_signed = np.int64(t)  # words and t fit in int64; a signed compare vectorizes on AVX2
        for c in loop(n_chunks):
            words = np.empty(_SCRATCH, dtype=np.uint32)
            w0 = np.empty(_SCRATCH // 4, dtype=np.uint32)
            w1 = np.empty(_SCRATCH // 4, dtype=np.uint32)
            w2 = np.empty(_SCRATCH // 4, dtype=np.uint32)
            w3 = np.empty(_SCRATCH // 4, dtype=np.uint32)
            keep = np.empty(TILE, dtype=np.uint8)
            keep64 = keep.view(np.uint64)
            for tile in range(c * n_tiles // n_chunks, (c + 1) * n_tiles // n_chunks):
                start = tile * TILE
                count = min(TILE, n - start)
                skip = _tile_words(words, w0, w1, w2, w3, offset, start, count, k0, k1)
                if mode == _MODE_BITS:
                    for e in range(count):
                        kept = np.int64(words[e + skip]) < t_signed
                        keep[e] = kept
                        y[start + e] = (x[start + e] * (one if kept else zero)) * scale
                    keep[count:] = 0  # the last tile's unused bits are 0, as np.packbits leaves them
                    # Eight 0/1 bytes read as one little-endian uint64, times this constant, carry
                    # byte r's bit to bit 56 + r: the packed byte, bit 0 first, in the top 8 bits.
                    for q in range((count + 7) >> 3):
                        mask_bits[(start >> 3) + q] = (keep64[q] * _PACK8) >> np.uint64(56)
                else:
                    for e in range(count):
                        kept = np.int64(words[e + skip]) < t_signed
                        if mode == _MODE_BOOL:
                            mask_bool[start + e] = kept
                        y[start + e] = (x[start + e] * (one if kept else zero)) * scale

    return kernel


def _make_apply_bool(loop):
    @njit(parallel=loop is prange, nogil=True, cache=True)
    def apply_bool(x, y, mask, scale):
        """Backward from a stored bool mask: no random words, a plain elementwise loop."""
        one = scale - scale + 1
        zero = scale - scale
        for i in loop(x.size):
            y[i] = (x[i] * (one if mask[i] else zero)) * scale

    return apply_bool


def _make_apply_bits(loop):
    @njit(parallel=loop is prange, nogil=True, cache=True)
    def apply_bits(x, y, bits, scale):
        """Backward from a stored bit mask: one byte, eight elements, per iteration."""
        one = scale - scale + 1
        zero = scale - scale
        n = x.size
        for q in loop((n + 7) >> 3):
            byte = bits[q]
            for r in range(min(8, n - 8 * q)):
                i = 8 * q + r
                y[i] = (x[i] * (one if (byte >> r) & 1 else zero)) * scale

    return apply_bits


# Every kernel twice: [parallel, serial]. Which one a call runs is threads.pool_for's choice.
_REGEN = {mode: (_make_regen_kernel(mode, prange), _make_regen_kernel(mode, range))
          for mode in (_MODE_NONE, _MODE_BOOL, _MODE_BITS)}
_APPLY_BOOL = (_make_apply_bool(prange), _make_apply_bool(range))
_APPLY_BITS = (_make_apply_bits(prange), _make_apply_bits(range))

_EMPTY_BOOL = np.empty(0, dtype=np.bool_)
_EMPTY_BITS = np.empty(0, dtype=np.uint8)


def _run(x, y, kernels, *args, chunks=False):
    """Flatten to C order (copying a non-contiguous view), run the parallel or the serial
    kernel, copy back if needed. ``chunks``: pass the kernel its number of tile chunks."""
    xf = np.ascontiguousarray(x).reshape(-1)
    yf = y.reshape(-1) if y.flags.c_contiguous else np.empty(x.size, dtype=x.dtype)
    with threads.pool_for(x.size) as parallel:
        if chunks:
            n_tiles = (x.size + TILE - 1) // TILE
            n_chunks = min(n_tiles, 8 * get_num_threads()) if parallel else min(n_tiles, 1)
            args = args + (n_chunks,)
        kernels[0 if parallel else 1](xf, yf, *args)
    if not y.flags.c_contiguous:
        y[...] = yf.reshape(x.shape)
    return y


def _regen(x, y, mode, mask_bool, mask_bits, seed, offset, p):
    k0, k1 = split_seed(seed)
    return _run(x, y, _REGEN[mode], mask_bool, mask_bits, k0, k1, np.uint64(offset),
                keep_threshold(p), scale_for(p, x.dtype), chunks=True)


def dropout_forward(x, p, *, seed, offset=0, training=True, mask_format="bool", out=None):
    """Inverted dropout on the CPU; same contract and returns as :func:`reference.dropout_forward`."""
    x, p, seed, offset, training, mask_format, y_view = v.numpy_forward_args(
        x, p, seed, offset, training, mask_format, out)
    y = np.empty(x.shape, dtype=x.dtype) if y_view is None else y_view
    if not training:
        y[...] = x
        return v.returned(y, out), None
    mask_bool, mask_bits, mask = _EMPTY_BOOL, _EMPTY_BITS, None
    if mask_format == "bool":
        mask = np.empty(x.shape, dtype=np.bool_)
        mask_bool = mask.reshape(-1)
    elif mask_format == "bits":
        mask = np.empty(v.n_mask_bytes(x.size), dtype=np.uint8)
        mask_bits = mask
    _regen(x, y, _MODES[mask_format], mask_bool, mask_bits, seed, offset, p)
    return v.returned(y, out), mask


def dropout_backward(grad_y, p, *, mask=None, seed=None, offset=0, out=None):
    """``grad_x = (grad_y * m) * scale`` on the CPU; same contract as :func:`reference.dropout_backward`."""
    g, p, seed, offset, dx_view = v.numpy_backward_args(grad_y, p, mask, seed, offset, out)
    dx = np.empty(g.shape, dtype=g.dtype) if dx_view is None else dx_view
    if mask is None:
        _regen(g, dx, _MODE_NONE, _EMPTY_BOOL, _EMPTY_BITS, seed, offset, p)
        return v.returned(dx, out)
    mask, fmt = v.as_mask_array(mask, g.shape, g.size)
    scale = scale_for(p, g.dtype)
    if fmt == "bool":
        _run(g, dx, _APPLY_BOOL, np.ascontiguousarray(mask).reshape(-1), scale)
    else:
        _run(g, dx, _APPLY_BITS, np.ascontiguousarray(mask), scale)
    return v.returned(dx, out)
