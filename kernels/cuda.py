"""numba.cuda dropout kernels, bit-identical to :mod:`reference`.

Thread mapping (the crux of speed): a thread block owns a tile of ``ept * tpb`` consecutive
elements (``ept`` elements per thread, a multiple of 4). Thread ``j`` runs Philox for counter
blocks ``j, j + tpb, ...`` of those the tile touches and parks the words in shared memory
in stream order (the reads, one per element, are conflict-free; the writes, one per four
elements, are not, and cost little).
After one barrier, thread ``j`` handles elements ``j, j + tpb, j + 2 tpb, ...`` of the tile,
so every global load and store of a warp is one contiguous, coalesced run, while each
element still reads the word that the contract assigns to its stream position. The loads of
``x`` are issued before the Philox rounds so that memory latency hides behind the
arithmetic; Philox runs on 32-bit words (one ``mul.wide.u32`` per product).

Inputs: NumPy arrays (copied to the device and back: results are NumPy) or C-contiguous
device arrays (anything with ``__cuda_array_interface__``: results are numba device arrays,
no host round trip). float32 and float64.
"""

from __future__ import annotations

import contextlib
import functools
import warnings

import numpy as np
from numba import config, cuda

from reference import validate as v
from reference.half import HALF_NONE, compute_dtype, half_code, make_codecs
from reference.noise import broadcast_layout
from reference.stream import MASK32, SHIFT32, keep_threshold, make_philox, scale_for, split_seed

NAME = "cuda"
SIMULATED = bool(config.ENABLE_CUDASIM)



@cuda.jit(device=True, inline=True)
def _mulhilo32(a, b):
    # Widening 32x32 -> 64 product of uint32 words: one mul.wide.u32 on the GPU, where the
    # uint64 carriers of the CPU code would cost full 64-bit multiplies.
    prod = np.uint64(a) * np.uint64(b)
    return np.uint32(prod >> SHIFT32), np.uint32(prod)


_philox = cuda.jit(device=True, inline=True)(make_philox(_mulhilo32, np.uint32))

if SIMULATED:  # the simulator runs Python on NumPy scalars, and has no libdevice bit casts
    def _as_float32(bits):
        return np.uint32(bits).view(np.float32)

    def _as_bits32(value):
        return np.float32(value).view(np.uint32)
else:
    from numba.cuda import libdevice

    @cuda.jit(device=True, inline=True)
    def _as_float32(bits):
        return libdevice.int_as_float(np.int32(bits))

    @cuda.jit(device=True, inline=True)
    def _as_bits32(value):
        return np.uint32(libdevice.float_as_int(value))

_to_f32, _from_f32 = (cuda.jit(device=True, inline=True)(f) for f in make_codecs(_as_float32, _as_bits32))


@cuda.jit(device=True, inline=True)
def _dropped(xv, keep, one, zero, scale, half):
    """One output element: ``(x * m) * scale``, through float32 for a 16-bit pattern."""
    if half == HALF_NONE:
        return (xv * (one if keep else zero)) * scale
    return _from_f32((_to_f32(xv, half) * (one if keep else zero)) * scale, half)

MODE_NONE, MODE_BOOL, MODE_BITS = 0, 1, 2
MODES = {None: MODE_NONE, "bool": MODE_BOOL, "bits": MODE_BITS}

# Launch shape: any values give the same bits (tested); these are the fast ones on an H100.
_launch = {"threads_per_block": 32 if SIMULATED else 128, "elements_per_thread": 4 if SIMULATED else 16,
           "max_blocks": None}


@contextlib.contextmanager
def launch_config(threads_per_block=None, elements_per_thread=None, max_blocks=None):
    """Temporarily change the launch shape (tests use it to show the output does not move)."""
    saved = dict(_launch)
    if threads_per_block is not None:
        if threads_per_block % 32 or not 32 <= threads_per_block <= 1024:
            raise ValueError("threads_per_block must be a multiple of 32 in [32, 1024]")
        _launch["threads_per_block"] = threads_per_block
    if elements_per_thread is not None:
        if elements_per_thread % 4 or not 4 <= elements_per_thread <= 32:
            raise ValueError("elements_per_thread must be a multiple of 4 in [4, 32]")
        _launch["elements_per_thread"] = elements_per_thread
    _launch["max_blocks"] = max_blocks
    try:
        yield
    finally:
        _launch.update(saved)


def is_available() -> bool:
    return SIMULATED or cuda.is_available()


@functools.lru_cache(maxsize=None)
def _kernel(tpb: int, ept: int, mode: int, regenerate: bool, dtype, half: int):
    """Compile one specialization; every argument is a constant, so dead paths vanish.

    ``tpb`` threads per block, ``ept`` elements per thread (a multiple of 4): a tile is
    ``ept * tpb`` consecutive elements and touches at most ``ept * tpb / 4 + 1`` counter blocks.
    """
    tile = ept * tpb
    n_words = tile + 4  # the words of the tile/4 + 1 counter blocks a tile can touch, in stream order

    write_bool = regenerate and mode == MODE_BOOL
    write_bits = regenerate and mode == MODE_BITS
    read_bool = not regenerate and mode == MODE_BOOL
    read_bits = not regenerate and mode == MODE_BITS
    scalar = np.dtype(dtype).type
    options = {} if SIMULATED else {"launch_bounds": tpb}  # the simulator takes no bounds

    @cuda.jit(**options)
    def kernel(x, y, mask_bool, mask_bits, n, k0, k1, offset, t, scale, one, zero):
        words = cuda.shared.array(n_words, dtype=np.uint32)
        keepbuf = cuda.shared.array(tile, dtype=np.uint8)
        xs = cuda.local.array(ept, dtype=scalar)
        j = cuda.threadIdx.x
        n_tiles = (n + tile - 1) // tile
        tile_id = cuda.blockIdx.x
        while tile_id < n_tiles:
            start = tile_id * tile
            count = min(tile, n - start)
            full = count == tile  # all but the last tile: no per-element bounds checks
            # Issue every load first: they are in flight while Philox runs. Unsigned indices
            # spare numba's negative-index wraparound code on every access.
            for k in range(ept):
                e = j + k * tpb
                if full or e < count:
                    xs[k] = x[np.uint64(start + e)]
            skip = 0
            if regenerate:
                g0 = offset + np.uint64(start)
                first_block = g0 >> np.uint64(2)
                last_block = (g0 + np.uint64(count - 1)) >> np.uint64(2)
                n_blocks = np.int64(last_block - first_block) + 1
                skip = np.int64(g0 & np.uint64(3))
                blk = j
                while blk < n_blocks:
                    b = first_block + np.uint64(blk)
                    r0, r1, r2, r3 = _philox(np.uint32(b & MASK32), np.uint32(b >> SHIFT32),
                                             np.uint32(0), np.uint32(0), k0, k1)
                    w = np.uint64(4 * blk)
                    words[w] = r0
                    words[w + np.uint64(1)] = r1
                    words[w + np.uint64(2)] = r2
                    words[w + np.uint64(3)] = r3
                    blk += tpb
                cuda.syncthreads()
            for k in range(ept):
                e = j + k * tpb
                keep = False
                if full or e < count:
                    i = np.uint64(start + e)
                    if regenerate:
                        keep = words[np.uint64(e + skip)] < t  # consecutive lanes, distinct banks
                    elif read_bool:
                        keep = mask_bool[i]
                    elif read_bits:
                        keep = ((mask_bits[i >> np.uint64(3)] >> (i & np.uint64(7))) & 1) != 0
                    y[i] = _dropped(xs[k], keep, one, zero, scale, half)
                    if write_bool:
                        mask_bool[i] = keep
                if write_bits:
                    keepbuf[np.uint64(e)] = 1 if keep else 0
            if write_bits:
                cuda.syncthreads()
                q = j
                while q < tile // 8 and 8 * q < count:  # one byte per 8 elements
                    byte = 0
                    for r in range(8):
                        byte |= keepbuf[8 * q + r] << r
                    mask_bits[(start >> 3) + q] = byte
                    q += tpb
            cuda.syncthreads()  # the shared buffers are reused by the next tile
            tile_id += cuda.gridDim.x

    return kernel


@functools.lru_cache(maxsize=None)
def _broadcast_kernel(dtype, half: int, from_bits: bool):
    """``y = (x * M[i']) * scale`` for a ``noise_shape`` mask ``M`` (bool, or packed bits):
    ``dims`` are x's merged axes and ``mstrides`` their strides in ``M`` (0 where shared)."""

    @cuda.jit
    def kernel(x, y, mask, dims, mstrides, n, scale, one, zero):
        i = cuda.grid(1)
        stride = cuda.gridsize(1)
        while i < n:
            rest = i
            mi = 0
            for d in range(dims.size - 1, -1, -1):
                q = rest // dims[d]
                mi += (rest - q * dims[d]) * mstrides[d]
                rest = q
            if from_bits:
                keep = ((mask[mi >> 3] >> (mi & 7)) & 1) != 0
            else:
                keep = mask[mi] != 0
            y[i] = _dropped(x[i], keep, one, zero, scale, half)
            i += stride

    return kernel


# --- host side ---------------------------------------------------------------------

_dummy = {}


def _empty_device(dtype):
    if dtype not in _dummy:
        _dummy[dtype] = cuda.device_array(1, dtype=dtype)
    return _dummy[dtype]


def _is_device(a) -> bool:
    # The simulator's fake device arrays carry __cuda_ndarray__ but no __cuda_array_interface__.
    return hasattr(a, "__cuda_array_interface__") or hasattr(a, "__cuda_ndarray__")


def _as_device(a, name):
    """(device array, came_from_host) for a NumPy or ``__cuda_array_interface__`` array."""
    if _is_device(a):
        d = a if hasattr(a, "copy_to_host") else cuda.as_cuda_array(a)  # numba's own, or a foreign one
        if d.size and not d.is_c_contiguous():
            raise ValueError(f"{name} must be C-contiguous on the device (copy it first, e.g. .copy())")
        return d, False
    v.refuse_masked(a, name)
    return np.asarray(a), True  # a base-class view: no subclass semantics reach the copy


def _span(d):
    iface = d.__cuda_array_interface__ if hasattr(d, "__cuda_array_interface__") else d._ary.__array_interface__
    ptr = iface["data"][0]
    return ptr, ptr + d.size * d.dtype.itemsize


def _check_device_out(out, shape, dtype, inputs):
    d, host = _as_device(out, "out")
    if host:
        raise TypeError("out must be a device array when the input is a device array")
    if tuple(d.shape) != tuple(shape) or d.dtype != dtype:
        raise ValueError(f"out must have shape {tuple(shape)} and dtype {dtype}, got {tuple(d.shape)} and {d.dtype}")
    lo, hi = _span(d)
    for k, a in enumerate(inputs):
        if a is not None and a.size and d.size:
            alo, ahi = _span(a)
            if k == 0 and (alo, ahi) == (lo, hi):
                continue  # out is the input itself: in place
            if lo < ahi and alo < hi:
                raise ValueError("out must be the input itself (in place) or not overlap it" if k == 0
                                 else "out must not overlap the mask")
    return d


def _launch_kernel(mode, regenerate, x_flat, y_flat, mask_bool, mask_bits, seed, offset, p, dtype):
    """One tile-kernel launch over flat device arrays (16-bit formats as ``uint16``)."""
    half = half_code(dtype)
    n = x_flat.size
    if n == 0:
        return
    tpb, ept = _launch["threads_per_block"], _launch["elements_per_thread"]
    n_tiles = (n + ept * tpb - 1) // (ept * tpb)
    blocks = n_tiles if _launch["max_blocks"] is None else min(n_tiles, _launch["max_blocks"])
    k0, k1 = (np.uint32(k) for k in split_seed(seed))
    kernel = _kernel(tpb, ept, mode, regenerate, x_flat.dtype, half)
    work = compute_dtype(dtype)
    with _quiet_simulator():
        kernel[blocks, tpb](
            x_flat, y_flat,
            mask_bool if mask_bool is not None else _empty_device(np.bool_),
            mask_bits if mask_bits is not None else _empty_device(np.uint8),
            np.int64(n), k0, k1, np.uint64(offset), keep_threshold(p), scale_for(p, work),
            work.type(1), work.type(0),
        )


@contextlib.contextmanager
def _quiet_simulator():
    """The simulator multiplies NumPy scalars, which warn where IEEE arithmetic (and the GPU)
    silently gives inf or NaN: ``inf * 0`` and ``max * scale`` are the contract's answers."""
    if not SIMULATED:
        yield
        return
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", r"(overflow|invalid value) encountered", RuntimeWarning)
        yield


def _prepare(x, name):
    d, host = _as_device(x, name)
    v.check_float_dtype(d.dtype, name)
    return d, host


def _bits16(a, dtype):
    """Flat storage of a 16-bit float array as ``uint16`` (numba has no bfloat16 type)."""
    return a.view(np.uint16) if half_code(dtype) else a


def _to_host(y_dev, like, out_view):
    """The result as NumPy: into ``out``, or a new array with ``like``'s memory layout."""
    y = np.empty_like(like) if out_view is None else out_view
    y[...] = y_dev.copy_to_host().view(like.dtype).reshape(like.shape)
    return y


def _merged(shape, noise_shape):
    dims, mstrides = broadcast_layout(shape, noise_shape)
    return cuda.to_device(dims), cuda.to_device(mstrides)


def _apply_broadcast(x_flat, y_flat, mask_dev, from_bits, shape, noise_shape, p, dtype):
    n = x_flat.size
    if n == 0:
        return
    dims, mstrides = _merged(shape, noise_shape)
    work = compute_dtype(dtype)
    kernel = _broadcast_kernel(x_flat.dtype, half_code(dtype), from_bits)
    tpb = _launch["threads_per_block"]
    blocks = min((n + tpb - 1) // tpb, 1024 if SIMULATED else 65535)
    with _quiet_simulator():
        kernel[blocks, tpb](x_flat, y_flat, mask_dev, dims, mstrides, np.int64(n), scale_for(p, work),
                            work.type(1), work.type(0))


def _draw_mask(n_mask, fmt, seed, offset, p):
    """The ``noise_shape`` mask alone on the device: bool, or packed bits."""
    dummy = cuda.device_array(max(n_mask, 1), dtype=np.float32)[:n_mask]
    scratch = cuda.device_array(max(n_mask, 1), dtype=np.float32)[:n_mask]
    if fmt == "bits":
        m = cuda.device_array(v.n_mask_bytes(n_mask), dtype=np.uint8)
        _launch_kernel(MODE_BITS, True, dummy, scratch, None, m, seed, offset, p, np.dtype(np.float32))
    else:
        m = cuda.device_array(n_mask, dtype=np.bool_)
        _launch_kernel(MODE_BOOL, True, dummy, scratch, m, None, seed, offset, p, np.dtype(np.float32))
    return m


def dropout_forward(x, p, *, seed, offset=0, training=True, mask_format="bool", out=None, noise_shape=None):
    """Inverted dropout on the GPU; same contract and returns as :func:`reference.dropout_forward`.

    NumPy in, NumPy out; device array in, numba device arrays out (``out`` must then be a
    device array too; it may be ``x`` itself).
    """
    d, host = _prepare(x, "x")
    p = v.check_p(p)
    training = v.check_training(training)
    mask_format = v.check_mask_format(mask_format)
    noise_shape = v.check_noise_shape(noise_shape, d.shape)
    n_mask = v.n_mask_elements(d.shape, noise_shape)
    seed, offset = v.check_seed_offset(seed, offset, n_mask)
    if host:
        out_view = v.check_out(out, d)
        x_dev = cuda.to_device(_bits16(np.ascontiguousarray(d).reshape(-1), d.dtype))
    else:
        out = out_view = None if out is None else _check_device_out(out, d.shape, d.dtype, [d])
        x_dev = _bits16(d.reshape(d.size), d.dtype)
    y_dev = (cuda.device_array(d.size, dtype=x_dev.dtype) if (host or out is None)
             else _bits16(out.reshape(d.size), d.dtype))
    mask = None
    mshape = d.shape if noise_shape is None else noise_shape
    if not training:
        y_dev.copy_to_device(x_dev)
    elif noise_shape is not None and noise_shape != d.shape:
        m_bool = _draw_mask(n_mask, "bool", seed, offset, p)
        _apply_broadcast(x_dev, y_dev, m_bool, False, d.shape, noise_shape, p, d.dtype)
        mask = {"bool": m_bool, "bits": _draw_mask(n_mask, "bits", seed, offset, p) if mask_format == "bits"
                else None, None: None}[mask_format]
    else:
        mask_bool = cuda.device_array(d.size, dtype=np.bool_) if mask_format == "bool" else None
        mask_bits = cuda.device_array(v.n_mask_bytes(d.size), dtype=np.uint8) if mask_format == "bits" else None
        _launch_kernel(MODES[mask_format], True, x_dev, y_dev, mask_bool, mask_bits, seed, offset, p, d.dtype)
        mask = mask_bool if mask_bool is not None else mask_bits
    if host:
        if mask is not None:
            mask = mask.copy_to_host()
            if mask_format == "bool":
                mask = mask.reshape(mshape)
        return v.returned(_to_host(y_dev, d, out_view), out), mask
    if mask is not None and mask_format == "bool":
        mask = mask.reshape(mshape)
    return (out if out is not None else _typed(y_dev, d).reshape(d.shape)), mask


def _typed(y_dev, like):
    """A result in the input's dtype: float16 device arrays come back as float16."""
    return y_dev.view(like.dtype) if y_dev.dtype != like.dtype else y_dev


def dropout_backward(grad_y, p, *, mask=None, seed=None, offset=0, out=None, noise_shape=None):
    """``grad_x = (grad_y * m) * scale`` on the GPU; same contract as :func:`reference.dropout_backward`."""
    d, host = _prepare(grad_y, "grad_y")
    p = v.check_p(p)
    noise_shape = v.check_noise_shape(noise_shape, d.shape)
    n_mask = v.n_mask_elements(d.shape, noise_shape)
    seed, offset = v.check_backward_source(mask, seed, offset, n_mask)
    mshape = d.shape if noise_shape is None else noise_shape
    mask_bool = mask_bits = None
    mode = MODE_NONE
    if mask is not None:
        if not (isinstance(mask, np.ndarray) or _is_device(mask)):
            raise TypeError(f"mask must be an array of dtype bool or uint8, got {type(mask).__name__}")
        dm, _ = _as_device(mask, "mask")
        what = "the gradient's shape" if noise_shape is None else "shape noise_shape ="
        fmt = v.mask_format_of(dm.shape, dm.dtype, mshape, n_mask, what)
        dm = cuda.to_device(np.ascontiguousarray(dm).reshape(-1)) if isinstance(dm, np.ndarray) else dm.reshape(dm.size)
        mode = MODES[fmt]
        mask_bool, mask_bits = (dm, None) if fmt == "bool" else (None, dm)
    if host:
        out_view = v.check_out(out, d, "out", np.asarray(mask) if isinstance(mask, np.ndarray) else None)
        g_dev = cuda.to_device(_bits16(np.ascontiguousarray(d).reshape(-1), d.dtype))
    else:
        out = out_view = None if out is None else _check_device_out(out, d.shape, d.dtype, [d, mask_bool, mask_bits])
        g_dev = _bits16(d.reshape(d.size), d.dtype)
    dx_dev = (cuda.device_array(d.size, dtype=g_dev.dtype) if (host or out is None)
              else _bits16(out.reshape(d.size), d.dtype))
    if noise_shape is not None and noise_shape != d.shape:
        if mask is None:
            m, from_bits = _draw_mask(n_mask, "bool", seed, offset, p), False
        else:
            m, from_bits = (mask_bool, False) if mask_bits is None else (mask_bits, True)
        _apply_broadcast(g_dev, dx_dev, m, from_bits, d.shape, noise_shape, p, d.dtype)
    else:
        _launch_kernel(mode, mask is None, g_dev, dx_dev, mask_bool, mask_bits, seed or 0, offset, p, d.dtype)
    if host:
        return v.returned(_to_host(dx_dev, d, out_view), out)
    return out if out is not None else _typed(dx_dev, d).reshape(d.shape)
