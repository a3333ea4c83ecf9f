"""Dropout on Dask arrays: the same bits as the reference on the whole array, whatever the
chunking and wherever each chunk runs.

``dropout_forward`` / ``dropout_backward`` take and return Dask arrays, lazily, with the
signature of every backend plus ``kernel=`` (the per-chunk backend: ``"cpu"`` by default,
``"reference"`` or ``"cuda"``). The contract is docs/RNG_STREAM.md; docs/DASK.md explains this
module.

How a chunk finds its stream positions: the element at logical C-order index ``i`` of the
*whole* array takes position ``offset + i``. A block covers a box of the array; merging the
trailing axes that the block covers fully into the last partial one, the block is
``n_runs`` runs of ``run_len`` consecutive positions (one run per "row"; a block that does not
split the trailing axes is ONE run). The block computes its runs from ``map_blocks``'
``block_info`` (the block's location and the array's shape) on the worker, so the graph
carries no positions and a rechunked or moved block draws the same words:

* one run: the per-chunk backend is called as is, with ``offset`` = the run's position;
* several runs: :mod:`kernels.cpu_runs` (compiled, one start position per run), the
  reference's vectorized Philox on the block's positions, or a small CUDA kernel.

Masks: ``"bool"`` (a Dask array of ``x``'s shape and chunks) and ``None`` always; ``"bits"``
(a 1-D ``uint8`` Dask array, ``np.packbits(mask.ravel(), bitorder="little")``) when every
block is one run and every non-empty block but the last holds a multiple of 8 elements, so
that each block's bytes are whole bytes of the array's packed mask; otherwise ``ValueError``.
"""

from __future__ import annotations

import functools
import math
import numbers

import numpy as np

import dask.array as da
from dask.base import tokenize
from dask.highlevelgraph import HighLevelGraph

from reference import validate as v

NAME = "dask"
KERNELS = ("cpu", "reference", "cuda")


# --- where a block lies in the stream -------------------------------------------------


def run_shape(location, shape) -> tuple[int, int, int]:
    """``(n_runs, run_len, axis)`` of the block at ``location`` (``[(start, stop), ...]``) of
    an array of ``shape``: axes after ``axis`` are covered fully and merged into the runs."""
    ndim = len(shape)
    if ndim == 0:
        return 1, 1, 0
    axis = ndim - 1
    while axis > 0 and tuple(location[axis]) == (0, shape[axis]):
        axis -= 1
    run_len = (location[axis][1] - location[axis][0]) * math.prod(shape[axis + 1:])
    n_runs = math.prod(stop - start for start, stop in location[:axis])
    return n_runs, run_len, axis


def run_starts(location, shape) -> np.ndarray:
    """Logical C-order index (``int64``, relative to the array's first element) of the first
    element of each run of the block at ``location``, in the block's C order."""
    n_runs, run_len, axis = run_shape(location, shape)
    if len(shape) == 0:
        return np.zeros(1, dtype=np.int64)
    strides = [math.prod(shape[d + 1:]) for d in range(len(shape))]
    starts = np.array([location[axis][0] * strides[axis]], dtype=np.int64)
    for d in range(axis):  # axis 0 varies slowest: C order of the runs
        idx = np.arange(location[d][0], location[d][1], dtype=np.int64) * np.int64(strides[d])
        starts = np.add.outer(starts, idx).reshape(-1)
    return starts


def _stream_starts(block_info, offset):
    info = block_info[0]
    location, shape = info["array-location"], tuple(info["shape"])
    n_runs, run_len, _ = run_shape(location, shape)
    rel = run_starts(location, shape)
    return n_runs, run_len, rel.astype(np.uint64) + np.uint64(offset)


# --- per-chunk kernels (they run on the workers) ---------------------------------------


def _backend(kernel):
    import kernels

    return kernels.get_backend(kernel)


def _keep_runs(kernel, starts, run_len, p, seed, like):
    """Bool keep mask ``(n_runs, run_len)`` of runs starting at ``starts`` (uint64)."""
    if kernel == "cpu":
        from . import cpu_runs

        return cpu_runs.keep_runs(starts, run_len, p, seed)
    if kernel == "cuda":
        return _cuda_keep_runs(starts, run_len, p, seed, like)
    from reference.stream import keep_threshold, words_for_positions

    g = starts[:, None] + np.arange(run_len, dtype=np.uint64)[None, :]
    return words_for_positions(g, seed) < keep_threshold(p)


def _forward_block(x, p, seed, offset, mask_format, kernel, block_info=None):
    """One block of the forward (or of backward without a stored mask: ``mask_format=None``).
    Returns ``y``, or ``(y, mask)`` when a mask is stored."""
    n_runs, run_len, starts = _stream_starts(block_info, offset)
    if x.size == 0:
        y = np.empty(x.shape, dtype=x.dtype)
        mask = {None: None, "bool": np.empty(x.shape, dtype=np.bool_), "bits": np.empty(0, dtype=np.uint8)}[mask_format]
    elif n_runs == 1:  # one contiguous range of positions: the backend itself, at its offset
        y, mask = _backend(kernel).dropout_forward(x, p, seed=seed, offset=int(starts[0]), mask_format=mask_format)
    elif mask_format == "bits":  # refused when the graph is built; a guard for hand-made graphs
        raise ValueError("mask_format='bits' needs blocks that are each one run of positions")
    elif kernel == "cpu" and x.dtype in (np.float32, np.float64):  # the fused compiled entry
        from . import cpu_runs

        y2, mask = cpu_runs.dropout_runs(x.reshape(n_runs, run_len), starts, p, seed,
                                         store_mask=mask_format == "bool")
        y = y2.reshape(x.shape)
        mask = None if mask is None else mask.reshape(x.shape)
    else:  # keep mask of the runs, then the backend's elementwise apply: (x * m) * scale
        mask = _keep_runs(kernel, starts, run_len, p, seed, x).reshape(x.shape)
        y = _backend(kernel).dropout_backward(x, p, mask=mask)
        if mask_format is None:
            mask = None
    return y if mask_format is None else (y, mask)


def _backward_mask_block(g, mask, p, kernel):
    """One block of backward from a stored mask block (bool of the block's shape, or its bits)."""
    if g.size == 0:
        return np.empty(g.shape, dtype=g.dtype)
    return _backend(kernel).dropout_backward(g, p, mask=mask)


def _unpack(bits):
    return np.unpackbits(bits, bitorder="little").view(np.bool_)


def _first(pair):
    return pair[0]


def _second(pair):
    return pair[1]


def _copy(x):
    return x.copy()


# --- CUDA runs: a small kernel that writes the keep mask of runs, then kernels.cuda applies it


cuda = None  # numba.cuda, imported by the first CUDA call (a module global, so the simulator can stand in)


@functools.lru_cache(maxsize=None)
def _cuda_runs_kernel():
    global cuda
    from numba import cuda

    from reference.stream import MASK32, SHIFT32, make_philox

    @cuda.jit(device=True, inline=True)
    def mulhilo32(a, b):
        prod = np.uint64(a) * np.uint64(b)
        return np.uint32(prod >> SHIFT32), np.uint32(prod)

    philox = cuda.jit(device=True, inline=True)(make_philox(mulhilo32, np.uint32))

    @cuda.jit
    def keep_kernel(mask, starts, run_len, n, k0, k1, t):
        i = cuda.grid(1)
        stride = cuda.gridsize(1)
        while i < n:
            r = i // run_len
            g = starts[r] + np.uint64(i - r * run_len)
            b = g >> np.uint64(2)
            w0, w1, w2, w3 = philox(np.uint32(b & MASK32), np.uint32(b >> SHIFT32), np.uint32(0), np.uint32(0),
                                    k0, k1)
            lane = g & np.uint64(3)
            w = w0 if lane == 0 else (w1 if lane == 1 else (w2 if lane == 2 else w3))
            mask[i] = np.uint64(w) < t
            i += stride

    return keep_kernel


def _cuda_keep_runs(starts, run_len, p, seed, like):
    """Keep mask of the runs on the GPU: a device array if ``like`` is one, else NumPy."""
    from numba import cuda

    from reference.stream import keep_threshold, split_seed

    n = starts.size * run_len
    mask = cuda.device_array(n, dtype=np.bool_)
    k0, k1 = (np.uint32(k) for k in split_seed(seed))
    tpb = 128
    blocks = max(1, min((n + tpb - 1) // tpb, 4096))
    _cuda_runs_kernel()[blocks, tpb](mask, cuda.to_device(np.ascontiguousarray(starts)), np.int64(run_len),
                                     np.int64(n), k0, k1, keep_threshold(p))
    mask = mask.reshape(starts.size, run_len)
    on_device = hasattr(like, "__cuda_array_interface__") or hasattr(like, "__cuda_ndarray__")
    return mask if on_device else mask.copy_to_host()


# --- graph building -------------------------------------------------------------------


def _check_dask(a, name):
    if not isinstance(a, da.Array):
        raise TypeError(f"{name} must be a dask array (dask.array.Array), got {type(a).__name__}; "
                        f"wrap a NumPy array with dask.array.from_array({name}, chunks=...)")
    if any(isinstance(s, float) and math.isnan(s) for s in a.shape):
        raise ValueError(f"{name} has unknown chunk sizes (shape {a.shape}); call {name}.compute_chunk_sizes() first")
    return a


def _check_kernel(kernel):
    if not isinstance(kernel, str):
        raise TypeError(f"kernel must be one of {KERNELS}, got {type(kernel).__name__}")
    if kernel not in KERNELS:
        raise ValueError(f"kernel must be one of {KERNELS}, got {kernel!r}")
    import kernels

    if kernel not in kernels.BACKENDS:
        raise ValueError(f"kernel={kernel!r} is not available here (no GPU, no CUDA simulator, or numba-cuda "
                         "missing); use kernel='cpu'")
    return kernel


def _check_out(out):
    if out is not None:
        raise TypeError("out must be None for the dask backend: Dask arrays are immutable, every call "
                        "returns new lazy arrays")


def _check_noise_shape(noise_shape, shape):
    if noise_shape is None:
        return None
    if not isinstance(noise_shape, (tuple, list)) or len(noise_shape) != len(shape):
        raise ValueError(f"noise_shape must be None or a tuple with one entry per dimension of x {tuple(shape)}, "
                         f"got {noise_shape!r}")
    ns = tuple(shape[d] if s is None else s for d, s in enumerate(noise_shape))
    for d, s in enumerate(ns):
        if isinstance(s, (bool, np.bool_)) or not isinstance(s, numbers.Integral) or s not in (1, shape[d]):
            raise ValueError(f"noise_shape[{d}] must be x.shape[{d}] = {shape[d]}, 1 or None, got {s!r}")
    if ns == tuple(shape):
        return None
    raise NotImplementedError("noise_shape other than x.shape is not supported by the dask backend yet")


def _block_locations(chunks):
    """Yield ``(block index, location)`` in C block order."""
    bounds = [np.concatenate([[0], np.cumsum(c)]).astype(int).tolist() for c in chunks]
    for idx in np.ndindex(*[len(c) for c in chunks]):
        yield idx, [(bounds[d][i], bounds[d][i + 1]) for d, i in enumerate(idx)]


def bits_chunks(chunks, shape):
    """Byte counts of each block's piece of the packed mask (C block order), or a reason why
    the blocks cannot hold whole bytes of it (a string)."""
    sizes = []
    for idx, loc in _block_locations(chunks):
        n_runs, run_len, _ = run_shape(loc, shape)
        size = n_runs * run_len
        if size and n_runs != 1:
            return (f"block {idx} covers {n_runs} separate runs of positions (its chunk splits the trailing "
                    f"axes); chunk x so that each block is one C-order range, e.g. whole rows")
        sizes.append((idx, size))
    nonempty = [(idx, s) for idx, s in sizes if s]
    for idx, s in nonempty[:-1]:
        if s % 8:
            return (f"block {idx} holds {s} elements, not a multiple of 8, so its mask bits would not be whole "
                    f"bytes of the packed mask")
    return [(s + 7) // 8 for _, s in sizes]


def _flat_array(src, getter, chunks1d, dtype, prefix):
    """A 1-D Dask array whose block ``f`` is ``getter(src block f)``, blocks in C order."""
    name = f"{prefix}-{tokenize(src.name, getter)}"
    dsk = {(name, f): (getter, (src.name,) + idx) for f, idx in enumerate(np.ndindex(*src.numblocks))}
    graph = HighLevelGraph.from_collections(name, dsk, dependencies=[src])
    return da.Array(graph, name, chunks=(tuple(chunks1d),), dtype=dtype, meta=np.empty(0, dtype=dtype))


def _meta(ndim, dtype):
    return np.empty((0,) * ndim, dtype=dtype)


def _regen_graph(x, p, seed, offset, mask_format, kernel, name):
    fn = functools.partial(_forward_block, p=p, seed=seed, offset=offset, mask_format=mask_format, kernel=kernel)
    token = tokenize(x.name, p, seed, offset, mask_format, kernel)
    if mask_format is None:
        return da.map_blocks(fn, x, dtype=x.dtype, meta=_meta(x.ndim, x.dtype), name=f"{name}-{token}"), None
    pair = da.map_blocks(fn, x, dtype=object, meta=_meta(x.ndim, object), name=f"{name}-pair-{token}")
    y = da.map_blocks(_first, pair, dtype=x.dtype, meta=_meta(x.ndim, x.dtype), name=f"{name}-y-{token}")
    if mask_format == "bool":
        mask = da.map_blocks(_second, pair, dtype=np.bool_, meta=_meta(x.ndim, np.bool_), name=f"{name}-mask-{token}")
    else:
        chunks = bits_chunks(x.chunks, x.shape)
        mask = _flat_array(pair, _second, chunks, np.uint8, f"{name}-bits")
    return y, mask


def dropout_forward(x, p, *, seed, offset=0, training=True, mask_format="bool", out=None, kernel="cpu",
                    noise_shape=None):
    """Inverted dropout of the Dask array ``x``, lazily: ``(y, mask)`` as Dask arrays, bit for bit
    the reference's on the whole array whatever the chunking. ``kernel`` is the per-chunk
    backend (``"cpu"``, ``"reference"``, ``"cuda"``)."""
    x = _check_dask(x, "x")
    v.check_float_dtype(x.dtype, "x")
    p = v.check_p(p)
    training = v.check_training(training)
    mask_format = v.check_mask_format(mask_format)
    seed, offset = v.check_seed_offset(seed, offset, x.size)
    _check_out(out)
    kernel = _check_kernel(kernel)
    _check_noise_shape(noise_shape, x.shape)
    if not training:
        return da.map_blocks(_copy, x, dtype=x.dtype, meta=x._meta), None
    if mask_format == "bits":
        chunks = bits_chunks(x.chunks, x.shape)
        if isinstance(chunks, str):
            raise ValueError(f"mask_format='bits' is not possible with these chunks {x.chunks}: {chunks}; "
                             "use mask_format='bool' or None, or rechunk x")
    return _regen_graph(x, p, seed, offset, mask_format, kernel, "dropout-forward")


def _as_dask_mask(mask, g):
    if isinstance(mask, np.ndarray) and not isinstance(mask, np.ma.MaskedArray):
        return da.from_array(mask, chunks=g.chunks if mask.dtype == np.bool_ and mask.shape == g.shape else -1)
    if not isinstance(mask, da.Array):
        raise TypeError(f"mask must be a dask array (or a NumPy array) of dtype bool or uint8, got {type(mask).__name__}")
    return _check_dask(mask, "mask")


def dropout_backward(grad_y, p, *, mask=None, seed=None, offset=0, out=None, kernel="cpu", noise_shape=None):
    """``grad_x = (grad_y * m) * scale`` of the Dask array ``grad_y``, lazily, with ``m`` from a
    stored mask (Dask or NumPy, either format, any chunks) or regenerated from ``seed``/``offset``."""
    g = _check_dask(grad_y, "grad_y")
    v.check_float_dtype(g.dtype, "grad_y")
    p = v.check_p(p)
    seed, offset = v.check_backward_source(mask, seed, offset, g.size)
    _check_out(out)
    kernel = _check_kernel(kernel)
    _check_noise_shape(noise_shape, g.shape)
    if mask is None:
        return _regen_graph(g, p, seed, offset, None, kernel, "dropout-backward")[0]
    mask = _as_dask_mask(mask, g)
    fmt = v.mask_format_of(mask.shape, mask.dtype, g.shape, g.size)
    fn = functools.partial(_backward_mask_block, p=p, kernel=kernel)
    token = tokenize(g.name, mask.name, p, kernel)
    if fmt == "bits":
        chunks = bits_chunks(g.chunks, g.shape)
        if isinstance(chunks, str):  # blocks are not whole bytes: unpack and lay the mask out as g
            n = g.size
            unpacked = mask.map_blocks(_unpack, dtype=np.bool_, chunks=(tuple(8 * c for c in mask.chunks[0]),),
                                       meta=np.empty(0, dtype=np.bool_))
            mask = unpacked[:n].reshape(g.shape).rechunk(g.chunks)
        else:  # block f of g takes block f of the rechunked bits
            bits = mask.rechunk((tuple(chunks),))
            name = f"dropout-backward-bits-{token}"
            dsk = {(name,) + idx: (fn, (g.name,) + idx, (bits.name, f))
                   for f, idx in enumerate(np.ndindex(*g.numblocks))}
            graph = HighLevelGraph.from_collections(name, dsk, dependencies=[g, bits])
            return da.Array(graph, name, chunks=g.chunks, dtype=g.dtype, meta=_meta(g.ndim, g.dtype))
    else:
        mask = mask.rechunk(g.chunks)
    return da.map_blocks(fn, g, mask, dtype=g.dtype, meta=_meta(g.ndim, g.dtype), name=f"dropout-backward-{token}")
