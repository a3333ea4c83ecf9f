"""Dropout over *runs* of stream positions: the compiled entry of the Dask backend's chunks.

A block of a larger array whose chunk splits a trailing axis is not one contiguous range of
stream positions but one range per row. This module takes such a block as a C-contiguous
``(n_runs, run_len)`` array and a ``uint64`` array ``starts`` holding the stream position
(offset included) of each run's first element: element ``(r, e)`` takes position
``starts[r] + e``. A start may be any position (not a multiple of 4): each tile of a run
fills its words with :func:`kernels.cpu._tile_words`, as the whole-array kernels do, so the
bits are exactly the reference's.

Like :mod:`kernels.cpu`, every kernel is compiled twice, ``prange`` and ``range``, and
:func:`kernels.threads.pool_for` picks one per call; the work unit is one tile of one run,
so neither the thread count nor the number of runs changes a bit. Backward from a stored
``"bool"`` mask needs no positions (call :mod:`kernels.cpu`); backward without a stored mask
is forward without one.
"""

from __future__ import annotations

import numpy as np
from numba import get_num_threads, njit, prange

from reference.stream import keep_threshold, scale_for, split_seed

from . import threads
from .cpu import TILE, _CACHE_KEY, _SCRATCH, _tile_words

_MODE_NONE, _MODE_BOOL = 0, 1
_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def _make_apply_kernel(mode: int, loop):
    """Draw each run's words, apply the keep decision to ``x``; store the mask when ``mode`` says."""
    cache_key = _CACHE_KEY

    @njit(parallel=loop is prange, nogil=True, cache=True)
    def kernel(x, y, mask_bool, starts, run_len, k0, k1, t, scale, n_chunks):
        _ = cache_key  # a change to the stream's source invalidates the on-disk cache
        tiles_per_run = (run_len + TILE - 1) // TILE
        n_items = starts.size * tiles_per_run
        zero = scale * np.float32(0.0)  # 0 and 1 in the scale's dtype (an int literal would widen
        one = zero + np.float32(1.0)    # float32 to float64: exact, but half the vector width)
        t_signed = np.int64(t)
        for c in loop(n_chunks):
            words = np.empty(_SCRATCH, dtype=np.uint32)
            w0 = np.empty(_SCRATCH // 4, dtype=np.uint32)
            w1 = np.empty(_SCRATCH // 4, dtype=np.uint32)
            w2 = np.empty(_SCRATCH // 4, dtype=np.uint32)
            w3 = np.empty(_SCRATCH // 4, dtype=np.uint32)
            for item in range(c * n_items // n_chunks, (c + 1) * n_items // n_chunks):
                r = item // tiles_per_run
                start = (item - r * tiles_per_run) * TILE
                count = min(TILE, run_len - start)
                base = r * run_len + start
                skip = _tile_words(words, w0, w1, w2, w3, starts[r], start, count, k0, k1)
                for e in range(count):
                    kept = np.int64(words[e + skip]) < t_signed
                    if mode == _MODE_BOOL:
                        mask_bool[base + e] = kept
                    y[base + e] = (x[base + e] * (one if kept else zero)) * scale

    return kernel


def _make_mask_kernel(loop):
    """Only the keep mask of the runs (for dtypes the fused kernel does not take)."""
    cache_key = _CACHE_KEY

    @njit(parallel=loop is prange, nogil=True, cache=True)
    def kernel(mask_bool, starts, run_len, k0, k1, t, n_chunks):
        _ = cache_key
        tiles_per_run = (run_len + TILE - 1) // TILE
        n_items = starts.size * tiles_per_run
        t_signed = np.int64(t)
        for c in loop(n_chunks):
            words = np.empty(_SCRATCH, dtype=np.uint32)
            w0 = np.empty(_SCRATCH // 4, dtype=np.uint32)
            w1 = np.empty(_SCRATCH // 4, dtype=np.uint32)
            w2 = np.empty(_SCRATCH // 4, dtype=np.uint32)
            w3 = np.empty(_SCRATCH // 4, dtype=np.uint32)
            for item in range(c * n_items // n_chunks, (c + 1) * n_items // n_chunks):
                r = item // tiles_per_run
                start = (item - r * tiles_per_run) * TILE
                count = min(TILE, run_len - start)
                base = r * run_len + start
                skip = _tile_words(words, w0, w1, w2, w3, starts[r], start, count, k0, k1)
                for e in range(count):
                    mask_bool[base + e] = np.int64(words[e + skip]) < t_signed

    return kernel


# [parallel, serial], as in kernels.cpu
_APPLY = {mode: (_make_apply_kernel(mode, prange), _make_apply_kernel(mode, range))
          for mode in (_MODE_NONE, _MODE_BOOL)}
_MASK = (_make_mask_kernel(prange), _make_mask_kernel(range))
_EMPTY_BOOL = np.empty(0, dtype=np.bool_)


def _check_runs(starts, n_runs, run_len):
    starts = np.ascontiguousarray(starts, dtype=np.uint64).reshape(-1)
    if starts.size != n_runs:
        raise ValueError(f"starts must hold one position per run ({n_runs}), got {starts.size}")
    if n_runs and run_len and int(starts.max()) + run_len > 2**64:
        raise ValueError("a run passes the stream's end (2**64)")
    return starts


def _launch(kernels, n_elements, n_items, *args):
    with threads.pool_for(n_elements) as parallel:
        n_chunks = min(n_items, 8 * get_num_threads()) if parallel else min(n_items, 1)
        kernels[0 if parallel else 1](*args, n_chunks)


def keep_runs(starts, run_len: int, p: float, seed: int) -> np.ndarray:
    """Bool keep mask of shape ``(len(starts), run_len)``: element ``(r, e)`` at position ``starts[r] + e``."""
    run_len = int(run_len)
    starts = _check_runs(starts, np.size(starts), run_len)
    mask = np.empty((starts.size, run_len), dtype=np.bool_)
    if mask.size:
        k0, k1 = split_seed(seed)
        n_items = starts.size * ((run_len + TILE - 1) // TILE)
        _launch(_MASK, mask.size, n_items, mask.reshape(-1), starts, np.int64(run_len), k0, k1,
                keep_threshold(p))
    return mask


def dropout_runs(x2: np.ndarray, starts, p: float, seed: int, store_mask: bool = True):
    """Forward dropout of ``x2`` (``(n_runs, run_len)``, any strides) whose run ``r`` starts at
    stream position ``starts[r]``. Returns ``(y2, mask2)``, ``mask2`` a bool array of ``x2``'s
    shape or None (``store_mask=False``; also backward without a stored mask, on ``grad_y``)."""
    x2 = np.asarray(x2)
    if x2.ndim != 2:
        raise ValueError(f"x2 must be 2-D (n_runs, run_len), got {x2.ndim}-D")
    n_runs, run_len = x2.shape
    starts = _check_runs(starts, n_runs, run_len)
    if x2.dtype not in _FLOATS:
        raise TypeError(f"x2 must be float32 or float64, got {x2.dtype}")
    xf = np.ascontiguousarray(x2).reshape(-1)
    y = np.empty(x2.shape, dtype=x2.dtype)
    mask = np.empty(x2.shape, dtype=np.bool_) if store_mask else None
    if y.size:
        k0, k1 = split_seed(seed)
        n_items = n_runs * ((run_len + TILE - 1) // TILE)
        mode = _MODE_BOOL if store_mask else _MODE_NONE
        _launch(_APPLY[mode], y.size, n_items, xf, y.reshape(-1),
                mask.reshape(-1) if store_mask else _EMPTY_BOOL, starts, np.int64(run_len), k0, k1,
                keep_threshold(p), scale_for(p, x2.dtype))
    return y, mask
