"""Numba CPU-parallel dropout kernels (``@njit(parallel=True)``, ``prange``).

Bit-identical to :mod:`reference`. The work is split into tiles of ``TILE`` elements (a
multiple of 8, so a ``"bits"`` byte never straddles two tiles). For each tile one
vectorizable loop runs Philox over the tile's counters into a per-chunk scratch of words
(structure of arrays, no branches: LLVM emits ``vpmuludq``), and a second loop applies the
keep decision. Tiles are a fixed function of the element index, so neither the thread count
nor the chunking changes a bit of the result.

float16 and bfloat16 arrays reach the kernels as their ``uint16`` patterns (Numba's CPU
target has no 16-bit float): each element is widened exactly to float32, multiplied, and
rounded once back (reference/half.py). A ``noise_shape`` call draws the small mask with the
same tile kernel, then one broadcast pass applies it.
"""

from __future__ import annotations

import functools
import hashlib
import math
from collections.abc import Callable
from typing import Any

import llvmlite.binding as ll
import numpy as np
from llvmlite import ir
from numba import config as numba_config
from numba import get_num_threads, njit, prange, types
from numba.core.extending import intrinsic as _intrinsic

from reference import half as _half
from reference import masks
from reference import stream as _stream
from reference import validate as v
from reference.half import HALF_BF16, HALF_F16, HALF_NONE, half_code, make_codecs, make_dropped
from reference.masks import MODE_BITS, MODE_BOOL, MODE_NONE, MODES
from reference.noise import broadcast_layout
from reference.stream import STREAM_END, keep_threshold, scale_for, split_seed

from . import philox_cpu, threads
from .philox_cpu import tile_words

NAME = "cpu"
TILE = 512  # elements per tile (128 Philox blocks): small tiles let the hardware prefetchers overlap
# the memory traffic of one tile with the Philox rounds of the next (measured 2^26 float32 forward, same
# run: 2048 -> 53%, 512 -> 63% of a copy)
SCRATCH = TILE + 8  # a tile starting mid-block needs one block more



def _sources_hash(*modules) -> str:
    digest = hashlib.sha256()
    for m in modules:
        with open(m.__file__, "rb") as f:
            digest.update(f.read())
    return digest.hexdigest()


# Numba's cache knows only this file's time stamp; the kernels inline the stream's Philox
# round, its position map, the 16-bit conversions and the output element rule, so their
# sources' hash rides in each kernel's closure (part of the cache key).
_CACHE_KEY = _sources_hash(_stream, _half, philox_cpu)


# Numba's stubs type an intrinsic's Python-level call as its typing function's
# (typingctx, ...): what compiled code calls is typed by the intrinsic itself, so Any.
intrinsic: Any = _intrinsic


@intrinsic
def _as_float32(typingctx, bits):
    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], ir.FloatType())
    return types.float32(types.uint32), codegen


@intrinsic
def _as_bits32(typingctx, value):
    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], ir.IntType(32))
    return types.uint32(types.float32), codegen


#: reference/half.py's integer codecs, compiled for the CPU.
soft_to_f32, soft_from_f32 = (njit(inline="always")(f) for f in make_codecs(_as_float32, _as_bits32))


@intrinsic
def _f16c_to_f32(typingctx, bits):
    def codegen(context, builder, sig, args):
        return builder.fpext(builder.bitcast(args[0], ir.HalfType()), ir.FloatType())
    return types.float32(types.uint16), codegen


@intrinsic
def _f16c_from_f32(typingctx, value):
    def codegen(context, builder, sig, args):
        return builder.bitcast(builder.fptrunc(args[0], ir.HalfType()), ir.IntType(16))
    return types.uint16(types.float32), codegen


@intrinsic
def _bf16_to_f32(typingctx, bits):
    def codegen(context, builder, sig, args):
        w = builder.shl(builder.zext(args[0], ir.IntType(32)), ir.Constant(ir.IntType(32), 16))
        return builder.bitcast(w, ir.FloatType())
    return types.float32(types.uint16), codegen


@intrinsic
def _bf16_from_f32(typingctx, value):
    """reference/half.py's bfloat16 rounding written in 32-bit LLVM integers: Numba would widen
    its integer arithmetic to 64 bits, half the lanes of a vector register (1.85x slower)."""
    def codegen(context, builder, sig, args):
        i32 = ir.IntType(32)

        def c(v):
            return ir.Constant(i32, v)

        w = builder.bitcast(args[0], i32)
        lsb = builder.and_(builder.lshr(w, c(16)), c(1))
        rounded = builder.lshr(builder.add(builder.add(w, c(0x7FFF)), lsb), c(16))
        nan = builder.icmp_unsigned(">", builder.and_(w, c(0x7FFFFFFF)), c(0x7F800000))
        quiet = builder.or_(builder.and_(builder.lshr(w, c(16)), c(0x8000)), c(0x7FC0))
        return builder.trunc(builder.select(nan, quiet, rounded), ir.IntType(16))
    return types.uint16(types.float32), codegen


# float16 by the CPU's own conversions (F16C: vcvtph2ps / vcvtps2ph, to nearest even) where
# Numba compiles for this host and it has them: 2.5x faster than the integer codecs. They agree
# with NumPy on every value but a signalling NaN, which F16C quiets; the kernels never meet the
# difference, since each conversion is followed, or preceded, by a multiply that quiets it.
_F16C = not getattr(numba_config, "CPU_NAME", None) and "+f16c" in ll.get_host_cpu_features().flatten()


@njit(inline="always")
def to_f32(h, code):
    """The kernels' widening of a 16-bit pattern: F16C or the integer codec for float16."""
    if _F16C and code == HALF_F16:
        return _f16c_to_f32(np.uint16(h))
    if code == HALF_BF16:
        return _bf16_to_f32(np.uint16(h))
    return soft_to_f32(h, code)


@njit(inline="always")
def from_f32(f, code):
    """The kernels' rounding of a float32 to a 16-bit pattern."""
    if _F16C and code == HALF_F16:
        return _f16c_from_f32(np.float32(f))
    if code == HALF_BF16:
        return _bf16_from_f32(np.float32(f))
    return soft_from_f32(f, code)


#: One output element (reference/half.py's rule) on the CPU's codecs.
_dropped = njit(inline="always")(make_dropped(to_f32, from_f32))

MODE_MASK = 3  # besides masks.MODES: draw the mask alone
_PACK8 = np.uint64(0x0102040810204080)


@njit(inline="always")
def _zero_one(scale):
    """0 and 1 in the scale's dtype: ``scale - scale + 1`` would be float64 (an int literal
    widens float32), and the whole loop would then run in double at half the vector width."""
    zero = scale * np.float32(0.0)
    return zero, zero + np.float32(1.0)


def _make_regen_kernel(mode: int, half: int, inplace: bool, loop):
    """Forward (or backward without a stored mask): draw, apply, and store the mask as ``mode`` says.

    ``mode`` and ``half`` (the 16-bit format, or none) are baked in as constants, so each
    specialization keeps only its own loop; ``loop`` is ``prange`` (the parallel compilation)
    or ``range`` (the serial one).
    """
    cache_key = _CACHE_KEY

    @njit(parallel=loop is prange, nogil=True, cache=True)
    def kernel(x, y, mask_bool, mask_bits, k0, k1, starts, run_len, t, scale, n_chunks, c0, c1):
        """Element ``r * run_len + e`` takes stream position ``starts[r] + e``: one run for a
        whole array (``starts = [offset]``), one per row for a block of a larger array."""
        _ = cache_key  # a change to the stream's source invalidates the on-disk cache
        n = mask_bool.size if mode == MODE_MASK else x.size
        tiles_per_run = (run_len + TILE - 1) // TILE
        n_items = (n // run_len) * tiles_per_run
        zero, one = _zero_one(scale)
        all_kept = t > np.uint64(0xFFFFFFFF)  # p = 0: t = 2**32, which no uint32 reaches
        t32 = np.uint32(np.uint64(0xFFFFFFFF) if all_kept else t)
        for c in loop(c0, c1):
            words = np.empty(SCRATCH, dtype=np.uint32)
            keep = np.zeros(TILE, dtype=np.uint8)
            keep64 = keep.view(np.uint64)
            for item in range(c * n_items // n_chunks, (c + 1) * n_items // n_chunks):
                r = item // tiles_per_run
                in_run = (item - r * tiles_per_run) * TILE
                count = min(TILE, run_len - in_run)
                start = r * run_len + in_run  # "bits" needs one run: a tile then starts on a byte
                skip = tile_words(words, starts[r], in_run, count, k0, k1)
                # Slices first, indexed from 0: with ``y[start + e]`` LLVM cannot prove the
                # index non-negative and emits gathers and scatters instead of vector loads.
                ws = words[skip:skip + count]
                if mode == MODE_MASK:
                    ms = mask_bool[start:start + count]
                    for e in range(count):
                        ms[e] = (ws[e] < t32) | all_kept
                    continue
                xs = x[start:start + count]
                ys = xs if inplace else y[start:start + count]
                if mode == MODE_BITS:
                    for e in range(count):
                        kept = (ws[e] < t32) | all_kept
                        keep[e] = kept
                        ys[e] = _dropped(xs[e], kept, one, zero, scale, half)
                    keep[count:] = 0  # the last tile's unused bits are 0, as np.packbits leaves them
                    # Eight 0/1 bytes read as one little-endian uint64, times this constant, carry
                    # byte r's bit to bit 56 + r: the packed byte, bit 0 first, in the top 8 bits.
                    mb = mask_bits[start >> 3:(start >> 3) + ((count + 7) >> 3)]
                    for q in range((count + 7) >> 3):
                        mb[q] = (keep64[q] * _PACK8) >> np.uint64(56)
                elif mode == MODE_BOOL:
                    ms = mask_bool[start:start + count]
                    for e in range(count):
                        kept = (ws[e] < t32) | all_kept
                        ms[e] = kept
                        ys[e] = _dropped(xs[e], kept, one, zero, scale, half)
                else:
                    for e in range(count):
                        ys[e] = _dropped(xs[e], (ws[e] < t32) | all_kept, one, zero, scale, half)

    return kernel


def _make_apply_bool(half: int, inplace: bool, loop):
    @njit(parallel=loop is prange, nogil=True, cache=True)
    def apply_bool(x, y, mask, scale, n_chunks, c0, c1):
        """Backward from a stored bool mask: no random words, a plain elementwise loop."""
        zero, one = _zero_one(scale)
        n_tiles = (x.size + TILE - 1) // TILE
        for c in loop(c0, c1):
            for tile in range(c * n_tiles // n_chunks, (c + 1) * n_tiles // n_chunks):
                start = tile * TILE
                stop = min(start + TILE, x.size)
                xs, ms = x[start:stop], mask[start:stop]
                ys = xs if inplace else y[start:stop]
                for e in range(stop - start):
                    ys[e] = _dropped(xs[e], ms[e], one, zero, scale, half)

    return apply_bool


def _make_apply_bits(half: int, inplace: bool, loop):
    @njit(parallel=loop is prange, nogil=True, cache=True)
    def apply_bits(x, y, bits, scale, n_chunks, c0, c1):
        """Backward from a stored bit mask: tiles of whole bytes (a tile is a multiple of 8),
        unpacked into a byte per element first, so that both loops vectorize."""
        zero, one = _zero_one(scale)
        n = x.size
        n_tiles = (n + TILE - 1) // TILE
        for c in loop(c0, c1):
            keep = np.empty(TILE, dtype=np.uint8)
            for tile in range(c * n_tiles // n_chunks, (c + 1) * n_tiles // n_chunks):
                start = tile * TILE
                stop = min(start + TILE, n)
                xs, bs = x[start:stop], bits[start >> 3:(stop + 7) >> 3]
                ys = xs if inplace else y[start:stop]
                for e in range(stop - start):
                    keep[e] = (bs[e >> 3] >> (e & 7)) & 1
                for e in range(stop - start):
                    ys[e] = _dropped(xs[e], keep[e], one, zero, scale, half)

    return apply_bits


_SEGMENT = 1 << 14  # elements of a row handled as one unit of work (rows may be one long run)


def _make_apply_broadcast(half: int, inplace: bool, loop):
    @njit(parallel=loop is prange, nogil=True, cache=True)
    def apply_broadcast(x, y, mask, dims, mstrides, scale, n_chunks, c0, c1):
        """``y = (x * M[i']) * scale`` for a ``noise_shape`` mask ``M``: ``dims`` are x's axes
        with runs of shared (or of independent) axes merged, ``mstrides`` their strides in
        ``M`` (0 along a shared axis). The last axis is the inner loop: one mask value per
        row when it is shared, consecutive ones when it is not."""
        zero, one = _zero_one(scale)
        k = dims.size
        row = dims[k - 1]
        inner_stride = mstrides[k - 1]
        n_rows = x.size // row
        per_row = (row + _SEGMENT - 1) // _SEGMENT
        units = n_rows * per_row
        for c in loop(c0, c1):
            for u in range(c * units // n_chunks, (c + 1) * units // n_chunks):
                r = u // per_row
                lo = (u - r * per_row) * _SEGMENT
                hi = min(row, lo + _SEGMENT)
                rest = r
                base = 0
                for d in range(k - 2, -1, -1):
                    base += (rest % dims[d]) * mstrides[d]
                    rest //= dims[d]
                xs = x[r * row + lo:r * row + hi]
                ys = xs if inplace else y[r * row + lo:r * row + hi]
                if inner_stride == 0:
                    keep = mask[base]
                    for e in range(hi - lo):
                        ys[e] = _dropped(xs[e], keep, one, zero, scale, half)
                else:
                    ms = mask[base + lo:base + hi]
                    for e in range(hi - lo):
                        ys[e] = _dropped(xs[e], ms[e], one, zero, scale, half)

    return apply_broadcast


_MAKERS: dict[str, Callable[..., Any]] = {
    "regen": _make_regen_kernel, "bool": _make_apply_bool, "bits": _make_apply_bits, "broadcast": _make_apply_broadcast,
}


def compiled_kernels(kind: str, *constants, inplace: bool = False):
    """``(parallel, serial)`` compilations of one kernel; which one a call runs is
    ``threads.try_pool``'s choice. Made on first use, so importing this module compiles nothing.

    ``inplace``: ``y`` is ``x`` (``out=x``). The kernel then writes through ``x``'s own slices:
    given two arrays that overlap, LLVM's vectorized loop would fail its run-time alias check
    and fall back to scalar code (in place ran at half the speed)."""
    return _compiled(kind, constants, bool(inplace))


def _kernel_pair(key, inplace):
    pair = _PAIRS.get((key, inplace))
    if pair is None:
        pair = _PAIRS[(key, inplace)] = compiled_kernels(*key, inplace=inplace)
    return pair


_PAIRS: dict = {}


@functools.cache
def _compiled(kind, constants, inplace):
    make = _MAKERS[kind]
    return make(*constants, inplace, prange), make(*constants, inplace, range)


EMPTY_BOOL = np.empty(0, dtype=np.bool_)
EMPTY_BITS = np.empty(0, dtype=np.uint8)


def _flat(a: np.ndarray, half: int | None = None) -> np.ndarray:
    """A C-ordered 1-D array of ``a`` (a view when possible); 16-bit floats as ``uint16``.
    ``half``: ``half_code(a.dtype)`` where the caller has it already."""
    f = (a if a.flags.c_contiguous else np.ascontiguousarray(a)).reshape(-1)
    return f.view(np.uint16) if (half_code(a.dtype) if half is None else half) else f


def _call(kernels, n: int, n_units: int, *args) -> None:
    """``kernels`` (parallel, serial) over ``n`` elements in ``n_units`` units of work: the
    parallel compilation in chunks of up to 8 per thread where ``threads.try_pool`` allows it
    (free cores, a large call), else the serial one."""
    if threads.try_pool(n):
        try:
            k = max(1, min(n_units, 8 * get_num_threads()))
            kernels[0](*args, k, 0, k)
        finally:
            threads.leave()
    else:
        kernels[1](*args, 1, 0, 1)


def _run(x, y, key, *args, units, fresh=False):
    """Flatten to C order (copying a non-contiguous view), run kernel ``key``
    (``compiled_kernels``' arguments) over ``units`` units of work, copy back if needed.
    ``fresh``: ``y`` was just allocated, so it cannot be ``x`` (no in-place test)."""
    xf = _flat(x)
    yf = _flat(y) if y.flags.c_contiguous else np.empty(x.size, dtype=xf.dtype)
    inplace = not fresh and xf.size > 0 and v.is_same_memory(xf, yf)
    _call(_kernel_pair(key, inplace), x.size, units, xf, yf, *args)
    if not y.flags.c_contiguous:
        y[...] = yf.view(y.dtype).reshape(x.shape)
    return y


def _regen_args(mask_bool, mask_bits, seed, offset, run_len, p, dtype) -> tuple:
    """The regen kernel's arguments after ``x`` and ``y`` (whole array: one run from ``offset``)."""
    k0, k1 = split_seed(seed)
    return (EMPTY_BOOL if mask_bool is None else mask_bool, EMPTY_BITS if mask_bits is None else mask_bits,
            k0, k1, _starts(offset), run_len, _threshold(p), _scale(p, dtype))


def _regen(x, y, mode, mask_bool, mask_bits, seed, offset, p, fresh=False):
    return _run(x, y, ("regen", mode, half_code(x.dtype)),
                *_regen_args(mask_bool, mask_bits, seed, offset, max(x.size, 1), p, x.dtype),
                units=(x.size + TILE - 1) // TILE, fresh=fresh)


_START0 = np.zeros(1, dtype=np.uint64)  # the kernels only read it


def _starts(offset: int) -> np.ndarray:
    return _START0 if offset == 0 else np.array([offset], dtype=np.uint64)


def _fast_forward(x, p, seed, offset, mask_format, out):
    """:func:`dropout_forward` of a call ``validate.fast_forward_ok`` accepted (contiguous,
    nonempty, elementwise, training): the general path's steps, without its checks."""
    half = half_code(x.dtype)
    y = np.empty_like(x) if out is None else out
    mask_bool, mask_bits = masks.new_mask(mask_format, x.shape)
    n = x.size
    _call(_kernel_pair(("regen", MODES[mask_format], half), out is x), n, (n + TILE - 1) // TILE,
          _flat(x, half), _flat(y, half), *_regen_args(mask_bool, mask_bits, seed, offset, n, p, x.dtype))
    return y, (mask_bits if mask_bool is None else mask_bool.reshape(x.shape))


def _fast_backward(g, p, mask, seed, offset, out):
    """:func:`dropout_backward` of a call ``validate.fast_backward_ok`` accepted."""
    half = half_code(g.dtype)
    dx = np.empty_like(g) if out is None else out
    n = g.size
    units = (n + TILE - 1) // TILE
    if mask is None:
        _call(_kernel_pair(("regen", MODE_NONE, half), out is g), n, units, _flat(g, half), _flat(dx, half),
              *_regen_args(None, None, seed, offset, n, p, g.dtype))
    else:
        fmt = "bool" if mask.dtype == np.bool_ else "bits"
        _call(_kernel_pair((fmt, half), out is g), n, units, _flat(g, half), _flat(dx, half), mask.reshape(-1),
              _scale(p, g.dtype))
    return dx


_CONSTANTS: dict = {}  # (p, dtype) -> scale, and p -> threshold: layer-sized calls repeat them


def _scale(p, dtype):
    key = (p, dtype)
    scale = _CONSTANTS.get(key)
    if scale is None:
        scale = _CONSTANTS[key] = scale_for(p, _half.compute_dtype(dtype))
        if len(_CONSTANTS) > 4096:
            _CONSTANTS.clear()
    return scale


def _threshold(p):
    t = _CONSTANTS.get(p)
    if t is None:
        t = _CONSTANTS[p] = keep_threshold(p)
    return t


def _draw_mask(shape, p, seed, offset) -> np.ndarray:
    """The keep mask of ``shape`` (C order from ``offset``), drawn alone."""
    return keep_runs([offset], math.prod(shape), p, seed).reshape(shape)


def _check_runs(starts, n_runs: int, run_len: int) -> np.ndarray:
    starts = np.ascontiguousarray(starts, dtype=np.uint64).reshape(-1)
    if starts.size != n_runs:
        raise ValueError(f"starts must hold one stream position per run ({n_runs}), got {starts.size}")
    if n_runs and run_len and int(starts.max()) + run_len > STREAM_END:
        raise ValueError("a run passes the stream's end (2**64)")
    return starts


def keep_runs(starts, run_len: int, p: float, seed: int) -> np.ndarray:
    """Bool keep mask of shape ``(len(starts), run_len)``: element ``(r, e)`` takes stream
    position ``starts[r] + e`` (the Dask backend's blocks: one run per row)."""
    run_len = int(run_len)
    starts = _check_runs(starts, np.size(starts), run_len)
    m = np.empty((starts.size, run_len), dtype=np.bool_)
    if m.size:
        k0, k1 = split_seed(seed)
        dummy = np.empty(0, dtype=np.float32)
        _call(compiled_kernels("regen", MODE_MASK, HALF_NONE), m.size, starts.size * ((run_len + TILE - 1) // TILE),
              dummy, dummy, m.reshape(-1), EMPTY_BITS, k0, k1, starts, run_len, keep_threshold(p), np.float32(1))
    return m


def dropout_runs(x2, starts, p: float, seed: int, store_mask: bool = True):
    """Forward dropout of ``x2`` (``(n_runs, run_len)``, any strides and float dtype) whose run
    ``r`` starts at stream position ``starts[r]``. Returns ``(y2, mask2)``: ``mask2`` a bool
    array of ``x2``'s shape, or None with ``store_mask=False`` (which is also backward without
    a stored mask, on ``grad_y``)."""
    x2 = v.as_float_array(x2, "x2")
    if x2.ndim != 2:
        raise ValueError(f"x2 must be 2-D (n_runs, run_len), got {x2.ndim}-D")
    n_runs, run_len = x2.shape
    starts = _check_runs(starts, n_runs, run_len)
    p = v.check_p(p)
    y = np.empty(x2.shape, dtype=x2.dtype)
    mask = np.empty(x2.shape, dtype=np.bool_) if store_mask else None
    if y.size:
        k0, k1 = split_seed(seed)
        _run(x2, y, ("regen", MODE_BOOL if store_mask else MODE_NONE, half_code(x2.dtype)),
             EMPTY_BOOL if mask is None else mask.reshape(-1), EMPTY_BITS, k0, k1, starts, run_len,
             keep_threshold(p), _scale(p, x2.dtype), units=n_runs * ((run_len + TILE - 1) // TILE))
    return y, mask


def _apply_broadcast(x, y, m, noise_shape, p):
    if x.size == 0:
        return y
    dims, mstrides = broadcast_layout(x.shape, noise_shape)
    units = (x.size // dims[-1]) * ((dims[-1] + _SEGMENT - 1) // _SEGMENT)
    return _run(x, y, ("broadcast", half_code(x.dtype)), m.reshape(-1).view(np.uint8), dims, mstrides,
                _scale(p, x.dtype), units=units)


def dropout_forward(x, p, *, seed, offset=0, training=True, mask_format="bool", out=None, noise_shape=None):
    """Inverted dropout on the CPU; same contract and returns as :func:`reference.dropout_forward`."""
    if v.fast_forward_ok(x, p, seed, offset, training, mask_format, out, noise_shape):
        return _fast_forward(x, p, seed, offset, mask_format, out)
    x, call, y_view = v.numpy_forward_args(x, p, seed, offset, training, mask_format, out, noise_shape)
    y = np.empty_like(x) if y_view is None else y_view  # order 'K': the input's layout
    if not call.training:
        y[...] = x
        return v.returned(y, out), None
    if call.broadcast:
        m = _draw_mask(call.mask_shape, call.p, call.seed, call.offset)
        _apply_broadcast(x, y, m, call.mask_shape, call.p)
        return v.returned(y, out), masks.stored(m, call.mask_format)
    mask_bool, mask_bits = masks.new_mask(call.mask_format, x.shape)
    _regen(x, y, MODES[call.mask_format], mask_bool, mask_bits, call.seed, call.offset, call.p, fresh=y_view is None)
    mask = mask_bits if mask_bool is None else mask_bool.reshape(x.shape)
    return v.returned(y, out), mask


def dropout_backward(grad_y, p, *, mask=None, seed=None, offset=0, out=None, noise_shape=None):
    """``grad_x = (grad_y * m) * scale`` on the CPU; same contract as :func:`reference.dropout_backward`."""
    if v.fast_backward_ok(grad_y, p, mask, seed, offset, out, noise_shape):
        return _fast_backward(grad_y, p, mask, seed, offset, out)
    g, call, mask, fmt, dx_view = v.numpy_backward_args(grad_y, p, mask, seed, offset, out, noise_shape)
    dx = np.empty_like(g) if dx_view is None else dx_view
    if call.broadcast:
        if fmt is None:
            m = _draw_mask(call.mask_shape, call.p, call.seed, call.offset)
        else:
            m = masks.kept_of(mask, fmt, call.mask_shape)
        _apply_broadcast(g, dx, m, call.mask_shape, call.p)
    elif fmt is None:
        _regen(g, dx, MODE_NONE, None, None, call.seed, call.offset, call.p, fresh=dx_view is None)
    else:
        _run(g, dx, (fmt, half_code(g.dtype)), np.ascontiguousarray(mask).reshape(-1), _scale(call.p, g.dtype),
             units=(g.size + TILE - 1) // TILE)
    return v.returned(dx, out)
