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
no host round trip). float32 and float64, and float16 and bfloat16 as their ``uint16``
patterns, widened exactly to float32 and rounded once back (reference/half.py).

The argument checks are reference/validate.py's front end; this module adds the device-array
layer (C-contiguous device arrays, ``out`` on the device, the overlap rule on their memory).
"""

from __future__ import annotations

import contextlib
import functools
import warnings
from typing import Any

import numpy as np
from numba import cuda as numba_cuda

from reference import masks, vocab
from reference import validate as v
from reference.half import compute_dtype, half_code, make_codecs, make_dropped
from reference.masks import MODE_BITS, MODE_BOOL, MODE_NONE, MODES
from reference.noise import broadcast_layout
from reference.overlap import check_out_memory
from reference.stream import SHIFT32, keep_threshold, make_philox, make_positions, scale_for, split_seed

# Numba's stubs type the kernel language as Python (``cuda.threadIdx.x`` a property of a class,
# ``cuda.grid`` an intrinsic's typing function); what compiled code means is typed by Numba.
cuda: Any = numba_cuda

NAME = "cuda"
SIMULATED = vocab.cuda_simulated()
#: What this backend takes, in its error messages.
ARRAYS = "a NumPy array or a device array"


@cuda.jit(device=True, inline=True)
def _mulhilo32(a, b):
    # Widening 32x32 -> 64 product of uint32 words: one mul.wide.u32 on the GPU, where the
    # uint64 carriers of the CPU code would cost full 64-bit multiplies.
    prod = np.uint64(a) * np.uint64(b)
    return np.uint32(prod >> SHIFT32), np.uint32(prod)


#: reference/stream.py's Philox round (on 32-bit words) and position map, as device functions.
philox = cuda.jit(device=True, inline=True)(make_philox(_mulhilo32, np.uint32))
block_and_lane, counter, block_span = make_positions(cuda.jit(device=True, inline=True))

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

#: reference/half.py's codecs, and its output element rule, as device functions.
to_f32, from_f32 = (cuda.jit(device=True, inline=True)(f) for f in make_codecs(_as_float32, _as_bits32))
_dropped = cuda.jit(device=True, inline=True)(make_dropped(to_f32, from_f32))

# Launch shape: any values give the same bits (tested); these are the fast ones on an H100.
_launch: dict[str, Any] = {"threads_per_block": 32 if SIMULATED else 128, "elements_per_thread": 4 if SIMULATED else 16,
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


@functools.cache
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
                first_block, n_blocks, skip = block_span(offset + np.uint64(start), count)
                blk = j
                while blk < n_blocks:
                    c0, c1 = counter(first_block + np.uint64(blk))
                    r0, r1, r2, r3 = philox(np.uint32(c0), np.uint32(c1), np.uint32(0), np.uint32(0), k0, k1)
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


@functools.cache
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


# --- host side: the device-array layer over reference/validate.py's front end ----------------

_dummy: dict = {}


def _empty_device(dtype):
    if dtype not in _dummy:
        _dummy[dtype] = cuda.device_array(1, dtype=dtype)
    return _dummy[dtype]


def is_device_array(a) -> bool:
    """A device array: ``__cuda_array_interface__``, or the simulator's stand-in (which carries
    ``__cuda_ndarray__`` instead)."""
    return hasattr(a, "__cuda_array_interface__") or hasattr(a, "__cuda_ndarray__")


def _as_device(a, name):
    """(device array, came_from_host) for a NumPy or ``__cuda_array_interface__`` array."""
    if is_device_array(a):
        d = a if hasattr(a, "copy_to_host") else cuda.as_cuda_array(a)  # numba's own, or a foreign one
        if d.size and not d.is_c_contiguous():
            raise ValueError(f"{name} must be C-contiguous on the device (copy it first, e.g. .copy())")
        return d, False
    return v.as_numpy(a, name), True  # a base-class view: no subclass semantics reach the copy


def _check_device_out(out, like, masks_=()):
    """``out`` for device input: a device array of ``like``'s shape and dtype, and the shared
    overlap rule (reference/overlap.py) on the device memory."""
    d, host = _as_device(out, "out")
    if host:
        raise TypeError("out must be a device array when the input is a device array")
    v.check_out_like(like.shape, like.dtype, d.shape, d.dtype)
    check_out_memory(d, like, masks_)
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


def _bits16(a, dtype):
    """Flat storage of a 16-bit float array as ``uint16`` (numba has no bfloat16 type)."""
    return a.view(np.uint16) if half_code(dtype) else a


def _to_host(y_dev, like, out_view):
    """The result as NumPy: into ``out``, or a new array with ``like``'s memory layout."""
    y = np.empty_like(like) if out_view is None else out_view
    y[...] = y_dev.copy_to_host().view(like.dtype).reshape(like.shape)
    return y


def _apply_broadcast(x_flat, y_flat, mask_dev, from_bits, call):
    n = x_flat.size
    if n == 0:
        return
    dims, mstrides = (cuda.to_device(a) for a in broadcast_layout(call.shape, call.noise_shape))
    work = compute_dtype(call.dtype)
    kernel = _broadcast_kernel(x_flat.dtype, half_code(call.dtype), from_bits)
    tpb = _launch["threads_per_block"]
    blocks = min((n + tpb - 1) // tpb, 1024 if SIMULATED else 65535)
    with _quiet_simulator():
        kernel[blocks, tpb](x_flat, y_flat, mask_dev, dims, mstrides, np.int64(n), scale_for(call.p, work),
                            work.type(1), work.type(0))


def _draw_mask(call, fmt):
    """The ``noise_shape`` mask alone on the device, in format ``fmt`` ("bool" or "bits"), 1-D."""
    n_mask = call.n_mask
    dummy = cuda.device_array(max(n_mask, 1), dtype=np.float32)[:n_mask]
    scratch = cuda.device_array(max(n_mask, 1), dtype=np.float32)[:n_mask]
    m_bool, m_bits = masks.new_mask(fmt, call.mask_shape, cuda.device_array)
    _launch_kernel(MODES[fmt], True, dummy, scratch, m_bool, m_bits, call.seed, call.offset, call.p,
                   np.dtype(np.float32))
    return m_bits if m_bool is None else m_bool


def _device_input(a, host):
    """The flat device array a kernel reads (a copy of host input)."""
    flat = np.ascontiguousarray(a).reshape(-1) if host else a.reshape(a.size)
    return cuda.to_device(_bits16(flat, a.dtype)) if host else _bits16(flat, a.dtype)


def _device_output(d, host, out):
    """The flat device array a kernel writes: a new one, or the device ``out``."""
    if host or out is None:
        return cuda.device_array(d.size, dtype=np.uint16 if half_code(d.dtype) else d.dtype)
    return _bits16(out.reshape(d.size), d.dtype)


def _result(y_dev, d, host, out, out_view):
    """What a call returns: NumPy for host input (into ``out``), else a device array."""
    if host:
        return v.returned(_to_host(y_dev, d, out_view), out)
    return out if out is not None else _typed(y_dev, d).reshape(d.shape)


def dropout_forward(x, p, *, seed, offset=0, training=True, mask_format="bool", out=None, noise_shape=None):
    """Inverted dropout on the GPU; same contract and returns as :func:`reference.dropout_forward`.

    NumPy in, NumPy out; device array in, numba device arrays out (``out`` must then be a
    device array too; it may be ``x`` itself).
    """
    d, host = _as_device(x, "x")
    call = v.forward_call(d.dtype, d.shape, p, seed, offset, training, mask_format, noise_shape)
    out_view = None
    if host:
        out_view = v.check_out(out, d)
    elif out is not None:
        out = _check_device_out(out, d)
    x_dev = _device_input(d, host)
    y_dev = _device_output(d, host, out)
    mask = None
    if not call.training:
        y_dev.copy_to_device(x_dev)
    elif call.broadcast:
        m_bool = _draw_mask(call, "bool")
        _apply_broadcast(x_dev, y_dev, m_bool, False, call)
        mask = m_bool if call.mask_format == "bool" else None
        if call.mask_format == "bits":
            mask = _draw_mask(call, "bits")
    else:
        mask_bool, mask_bits = masks.new_mask(call.mask_format, call.shape, cuda.device_array)
        _launch_kernel(MODES[call.mask_format], True, x_dev, y_dev, mask_bool, mask_bits, call.seed, call.offset,
                       call.p, call.dtype)
        mask = mask_bits if mask_bool is None else mask_bool
    if mask is not None:
        if host:
            mask = mask.copy_to_host()
        if call.mask_format == "bool":
            mask = mask.reshape(call.mask_shape)
    return _result(y_dev, d, host, out, out_view), mask


def _typed(y_dev, like):
    """A result in the input's dtype: float16 device arrays come back as float16."""
    return y_dev.view(like.dtype) if y_dev.dtype != like.dtype else y_dev


def dropout_backward(grad_y, p, *, mask=None, seed=None, offset=0, out=None, noise_shape=None):
    """``grad_x = (grad_y * m) * scale`` on the GPU; same contract as :func:`reference.dropout_backward`."""
    d, host = _as_device(grad_y, "grad_y")
    call = v.backward_call(d.dtype, d.shape, p, mask, seed, offset, noise_shape)
    mask_bool = mask_bits = host_mask = None
    mode = MODE_NONE
    if mask is not None:
        if not (isinstance(mask, np.ndarray) or is_device_array(mask)):
            raise v.mask_type_error(mask, ARRAYS)
        dm, mask_on_host = _as_device(mask, "mask")
        fmt = call.stored_mask_format(dm.shape, dm.dtype)
        if mask_on_host:
            host_mask = dm
            dm = cuda.to_device(np.ascontiguousarray(dm).reshape(-1))
        else:
            dm = dm.reshape(dm.size)
        mode = MODES[fmt]
        mask_bool, mask_bits = (dm, None) if fmt == "bool" else (None, dm)
    out_view = None
    if host:
        out_view = v.check_out(out, d, "out", host_mask)
    elif out is not None:
        out = _check_device_out(out, d, (mask_bool, mask_bits))
    g_dev = _device_input(d, host)
    dx_dev = _device_output(d, host, out)
    if call.broadcast:
        if mask is None:
            m, from_bits = _draw_mask(call, "bool"), False
        else:
            m, from_bits = (mask_bool, False) if mask_bits is None else (mask_bits, True)
        _apply_broadcast(g_dev, dx_dev, m, from_bits, call)
    else:
        _launch_kernel(mode, mask is None, g_dev, dx_dev, mask_bool, mask_bits, call.seed or 0, call.offset, call.p,
                       call.dtype)
    return _result(dx_dev, d, host, out, out_view)
