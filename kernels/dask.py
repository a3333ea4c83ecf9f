"""Dropout on Dask arrays: the same bits as the reference on the whole array, whatever the
chunking and wherever each chunk runs.

``dropout_forward`` / ``dropout_backward`` take and return Dask arrays, lazily, with the
signature of every backend plus ``chunk_backend=`` (the backend each chunk runs on: ``"cpu"``
by default, ``"reference"`` or ``"cuda"``; ``kernel=`` is its deprecated old name). The
contract is docs/RNG_STREAM.md; docs/DASK.md explains this module.

How a chunk finds its stream positions: the element at logical C-order index ``i`` of the
*whole* array takes position ``offset + i``. A block covers a box of the array; merging the
trailing axes that the block covers fully into the last partial one, the block is
``n_runs`` runs of ``run_len`` consecutive positions (one run per "row"; a block that does not
split the trailing axes is ONE run). The block computes its runs from ``map_blocks``'
``block_info`` (the block's location and the array's shape) on the worker, so the graph
carries no positions and a rechunked or moved block draws the same words:

* one run: the per-chunk backend is called as is, with ``offset`` = the run's position;
* several runs: :func:`kernels.cpu.dropout_runs` (compiled, one start position per run), the
  reference's vectorized Philox on the block's positions, or a small CUDA kernel.

``noise_shape`` (docs/RNG_STREAM.md): the mask has that smaller shape and position ``offset + j``
for its element ``j``; a block of ``x`` reads the box of the mask it broadcasts from (index 0
along the shared axes), found as runs in the mask's shape in the same way.

Masks: ``"bool"`` (a Dask array of the mask's shape, chunked as ``x`` along the independent
axes, one chunk along the shared ones) and ``None`` always; ``"bits"``
(a 1-D ``uint8`` Dask array, ``np.packbits(mask.ravel(), bitorder="little")``) when every
block is one run and every non-empty block but the last holds a multiple of 8 elements, so
that each block's bytes are whole bytes of the array's packed mask; otherwise ``ValueError``.
"""

from __future__ import annotations

import functools
import math
import warnings
from typing import Any

import dask.array as da
import numpy as np
from dask.base import tokenize
from dask.highlevelgraph import HighLevelGraph

from reference import masks
from reference import validate as v

NAME = "dask"
CHUNK_BACKENDS = ("cpu", "reference", "cuda")
#: What this backend takes for a stored mask, in its error messages.
ARRAYS = "a dask array (or a NumPy array)"


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


def mask_location(location, shape, noise_shape):
    """Location and shape, in the mask, of the block of ``x`` at ``location``: the block itself,
    or with ``noise_shape`` its box in the smaller mask (index 0 along the shared axes)."""
    if noise_shape is None:
        return [tuple(loc) for loc in location], tuple(shape)
    return ([tuple(loc) if k == n else (0, 1) for loc, k, n in zip(location, noise_shape, shape)],
            tuple(noise_shape))


# --- per-chunk kernels (they run on the workers) ---------------------------------------


def _backend(chunk_backend):
    import kernels

    return kernels.get_backend(chunk_backend)


def _keep_runs(chunk_backend, starts, run_len, p, seed, like):
    """Bool keep mask ``(n_runs, run_len)`` of runs starting at ``starts`` (uint64)."""
    if chunk_backend == "cpu":
        from . import cpu

        return cpu.keep_runs(starts, run_len, p, seed)
    if chunk_backend == "cuda":
        return _cuda_keep_runs(starts, run_len, p, seed, like)
    from reference.stream import keep_threshold, words_for_positions

    g = starts[:, None] + np.arange(run_len, dtype=np.uint64)[None, :]
    return words_for_positions(g, seed) < keep_threshold(p)


def _forward_block(x, p, seed, offset, mask_format, chunk_backend, noise_shape=None, block_info=None):
    """One block of the forward (or of backward without a stored mask: ``mask_format=None``).
    Returns ``y``, or ``(y, mask)`` when a mask is stored (with ``noise_shape``, the block's
    box of the small mask)."""
    info = block_info[0]
    mloc, mshape = mask_location(info["array-location"], tuple(info["shape"]), noise_shape)
    n_runs, run_len, _ = run_shape(mloc, mshape)
    starts = run_starts(mloc, mshape).astype(np.uint64) + np.uint64(offset)
    block_ns = None if noise_shape is None else tuple(b - a for a, b in mloc)
    ns_kw = {} if block_ns is None else {"noise_shape": block_ns}
    mask_shape = x.shape if block_ns is None else block_ns
    if x.size == 0 or n_runs * run_len == 0:
        y = np.empty(x.shape, dtype=x.dtype)
        mask = masks.stored(np.zeros(mask_shape, dtype=np.bool_), mask_format)
    elif n_runs == 1:  # one contiguous range of positions: the backend itself, at its offset
        y, mask = _backend(chunk_backend).dropout_forward(x, p, seed=seed, offset=int(starts[0]),
                                                          mask_format=mask_format, **ns_kw)
    elif mask_format == "bits":  # refused when the graph is built; a guard for hand-made graphs
        raise ValueError("mask_format='bits' needs blocks that are each one run of positions")
    elif chunk_backend == "cpu" and block_ns is None:  # the fused compiled entry
        from . import cpu

        y2, mask = cpu.dropout_runs(x.reshape(n_runs, run_len), starts, p, seed, store_mask=mask_format == "bool")
        y = y2.reshape(x.shape)
        mask = None if mask is None else mask.reshape(x.shape)
    else:  # keep mask of the runs, then the backend's apply from a stored mask: (x * m) * scale
        mask = _keep_runs(chunk_backend, starts, run_len, p, seed, x).reshape(mask_shape)
        y = _backend(chunk_backend).dropout_backward(x, p, mask=mask, **ns_kw)
        if mask_format is None:
            mask = None
    return y if mask_format is None else (y, mask)


def _backward_mask_block(g, mask, p, chunk_backend, noise_shape=None):
    """One block of backward from a stored mask block (bool of the mask block's shape, or its
    bits); ``noise_shape``: the mask block's shape, when the mask is smaller than ``g``."""
    if g.size == 0:
        return np.empty(g.shape, dtype=g.dtype)
    ns_kw = {} if noise_shape is None else {"noise_shape": noise_shape}
    return _backend(chunk_backend).dropout_backward(g, p, mask=mask, **ns_kw)


def _unpack(bits):
    return np.unpackbits(bits, bitorder="little").view(np.bool_)


def _first(pair):
    return pair[0]


def _second(pair):
    return pair[1]


def _copy(x):
    return x.copy()


# --- CUDA runs: a small kernel that writes the keep mask of runs, then kernels.cuda applies it


#: numba.cuda (typed Any: see kernels/cuda.py), set by the first CUDA call; a module global, which
#: the CUDA simulator replaces by its per-thread stand-in while a kernel runs.
cuda: Any = None


@functools.cache
def _cuda_runs_kernel():
    """kernels.cuda's Philox and position map (reference/stream.py's), over runs of positions."""
    global cuda
    from . import cuda as gpu

    cuda = gpu.cuda

    @cuda.jit
    def keep_kernel(mask, starts, run_len, n, k0, k1, t):
        i = cuda.grid(1)
        stride = cuda.gridsize(1)
        while i < n:
            r = i // run_len
            b, lane = gpu.block_and_lane(starts[r] + np.uint64(i - r * run_len))
            c0, c1 = gpu.counter(b)
            w0, w1, w2, w3 = gpu.philox(np.uint32(c0), np.uint32(c1), np.uint32(0), np.uint32(0), k0, k1)
            w = w0 if lane == 0 else (w1 if lane == 1 else (w2 if lane == 2 else w3))
            mask[i] = np.uint64(w) < t
            i += stride

    return keep_kernel


def _cuda_keep_runs(starts, run_len, p, seed, like):
    """Keep mask of the runs on the GPU: a device array if ``like`` is one, else NumPy."""
    from numba import cuda

    from reference.stream import keep_threshold, split_seed

    from . import cuda as gpu

    n = starts.size * run_len
    mask = cuda.device_array(n, dtype=np.bool_)
    k0, k1 = (np.uint32(k) for k in split_seed(seed))
    tpb = 128
    blocks = max(1, min((n + tpb - 1) // tpb, 4096))
    _cuda_runs_kernel()[blocks, tpb](mask, cuda.to_device(np.ascontiguousarray(starts)), np.int64(run_len),
                                     np.int64(n), k0, k1, keep_threshold(p))
    mask = mask.reshape(starts.size, run_len)
    return mask if gpu.is_device_array(like) else mask.copy_to_host()


# --- graph building -------------------------------------------------------------------


def _check_dask(a, name):
    if not isinstance(a, da.Array):
        raise TypeError(f"{name} must be a dask array (dask.array.Array), got {type(a).__name__}; "
                        f"wrap a NumPy array with dask.array.from_array({name}, chunks=...)")
    if any(isinstance(s, float) and math.isnan(s) for s in a.shape):
        raise ValueError(f"{name} has unknown chunk sizes (shape {a.shape}); call {name}.compute_chunk_sizes() first")
    return a


_UNSET = object()


def _check_chunk_backend(chunk_backend, kernel=_UNSET):
    """``chunk_backend``, checked; ``kernel`` is its deprecated old name."""
    if kernel is not _UNSET:
        warnings.warn("kernel= is deprecated: it names the backend each chunk runs on; use chunk_backend=",
                      DeprecationWarning, stacklevel=3)
        chunk_backend = kernel
    if not isinstance(chunk_backend, str):
        raise TypeError(f"chunk_backend must be one of {CHUNK_BACKENDS}, got {type(chunk_backend).__name__}")
    if chunk_backend not in CHUNK_BACKENDS:
        raise ValueError(f"chunk_backend must be one of {CHUNK_BACKENDS}, got {chunk_backend!r}")
    import kernels

    if chunk_backend not in kernels.BACKENDS:
        raise ValueError(f"chunk_backend={chunk_backend!r} is not available here (no GPU, no CUDA simulator, or "
                         "numba-cuda missing); use chunk_backend='cpu'")
    return chunk_backend


def _check_out(out):
    if out is not None:
        raise TypeError("out must be None for the dask backend: Dask arrays are immutable, every call "
                        "returns new lazy arrays")


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


class _Layout:
    """Where the mask lies for an array of ``shape`` in ``chunks``: its shape (``x.shape`` or
    ``noise_shape``), its chunks (``x``'s, and one chunk of 1 along each shared axis) and, for
    each block of ``x``, the index of the mask block it reads."""

    def __init__(self, shape, chunks, noise_shape):
        self.shape = tuple(shape)
        self.noise_shape = None if noise_shape is None else tuple(noise_shape)  # None: nothing shared
        self.mshape = self.shape if self.noise_shape is None else self.noise_shape
        self.shared = tuple(d for d in range(len(shape)) if self.mshape[d] != self.shape[d])
        self.mchunks = tuple((1,) if d in self.shared else tuple(c) for d, c in enumerate(chunks))

    def mask_block(self, idx):
        return tuple(0 if d in self.shared else i for d, i in enumerate(idx))

    def block_noise_shape(self, mblock_idx):
        if self.noise_shape is None:
            return None
        return tuple(self.mchunks[d][i] for d, i in enumerate(mblock_idx))

    def bits_chunks(self):
        return bits_chunks(self.mchunks, self.mshape)


def _mask_array(pair, layout, mask_format, prefix):
    """The mask output: block ``j`` of the mask is the mask of ``x``'s block ``j`` (along a
    shared axis the first block's), as an array of the mask's shape, or packed bits in C
    block order (1-D)."""
    mblocks = list(np.ndindex(*[len(c) for c in layout.mchunks]))
    dsk: dict[Any, Any]
    chunks: tuple
    dtype: type[np.generic]
    if mask_format == "bool":
        name = f"{prefix}-mask-{tokenize(pair.name, layout.mchunks)}"
        dsk = {(name,) + j: (_second, (pair.name,) + j) for j in mblocks}
        chunks, dtype = layout.mchunks, np.bool_
    else:
        name = f"{prefix}-bits-{tokenize(pair.name, layout.mchunks)}"
        dsk = {(name, f): (_second, (pair.name,) + j) for f, j in enumerate(mblocks)}
        chunks, dtype = (tuple(layout.bits_chunks()),), np.uint8
    graph = HighLevelGraph.from_collections(name, dsk, dependencies=[pair])
    return da.Array(graph, name, chunks=chunks, dtype=dtype, meta=np.empty((0,) * len(chunks), dtype=dtype))


def _meta(ndim, dtype):
    return np.empty((0,) * ndim, dtype=dtype)


def _regen_graph(x, call, mask_format, chunk_backend, layout, name):
    fn = functools.partial(_forward_block, p=call.p, seed=call.seed, offset=call.offset, mask_format=mask_format,
                           chunk_backend=chunk_backend, noise_shape=layout.noise_shape)
    token = tokenize(x.name, call.p, call.seed, call.offset, mask_format, chunk_backend, layout.noise_shape)
    if mask_format is None:
        return da.map_blocks(fn, x, dtype=x.dtype, meta=_meta(x.ndim, x.dtype), name=f"{name}-{token}"), None
    pair = da.map_blocks(fn, x, dtype=object, meta=_meta(x.ndim, object), name=f"{name}-pair-{token}")
    y = da.map_blocks(_first, pair, dtype=x.dtype, meta=_meta(x.ndim, x.dtype), name=f"{name}-y-{token}")
    return y, _mask_array(pair, layout, mask_format, name)


def dropout_forward(x, p, *, seed, offset=0, training=True, mask_format="bool", out=None, noise_shape=None,
                    chunk_backend="cpu", kernel=_UNSET):
    """Inverted dropout of the Dask array ``x``, lazily: ``(y, mask)`` as Dask arrays, bit for bit
    the reference's on the whole array whatever the chunking. ``chunk_backend`` is the backend
    each chunk runs on (``"cpu"``, ``"reference"``, ``"cuda"``; ``kernel=`` is its deprecated
    old name). With ``noise_shape`` the mask has that shape (chunked as ``x`` along the
    independent axes, one chunk along the shared ones)."""
    x = _check_dask(x, "x")
    call = v.forward_call(x.dtype, x.shape, p, seed, offset, training, mask_format, noise_shape)
    _check_out(out)
    chunk_backend = _check_chunk_backend(chunk_backend, kernel)
    if not call.training:
        return da.map_blocks(_copy, x, dtype=x.dtype), None
    layout = _Layout(x.shape, x.chunks, call.noise_shape if call.broadcast else None)
    if call.mask_format == "bits":
        chunks = layout.bits_chunks()
        if isinstance(chunks, str):
            raise ValueError(f"mask_format='bits' is not possible with these chunks {layout.mchunks}: {chunks}; "
                             "use mask_format='bool' or None, or rechunk x")
    return _regen_graph(x, call, call.mask_format, chunk_backend, layout, "dropout-forward")


def _as_dask_mask(mask, layout):
    if isinstance(mask, np.ndarray) and not isinstance(mask, np.ma.MaskedArray):
        bool_like = mask.dtype == np.bool_ and mask.shape == layout.mshape
        return da.from_array(mask, chunks=layout.mchunks if bool_like else -1)
    if not isinstance(mask, da.Array):
        raise v.mask_type_error(mask, ARRAYS)
    return _check_dask(mask, "mask")


def dropout_backward(grad_y, p, *, mask=None, seed=None, offset=0, out=None, noise_shape=None, chunk_backend="cpu",
                     kernel=_UNSET):
    """``grad_x = (grad_y * m) * scale`` of the Dask array ``grad_y``, lazily, with ``m`` from a
    stored mask (Dask or NumPy, either format, any chunks) or regenerated from ``seed``/``offset``."""
    g = _check_dask(grad_y, "grad_y")
    call = v.backward_call(g.dtype, g.shape, p, mask, seed, offset, noise_shape)
    _check_out(out)
    chunk_backend = _check_chunk_backend(chunk_backend, kernel)
    layout = _Layout(g.shape, g.chunks, call.noise_shape if call.broadcast else None)
    if mask is None:
        return _regen_graph(g, call, None, chunk_backend, layout, "dropout-backward")[0]
    mask = _as_dask_mask(mask, layout)
    fmt = call.stored_mask_format(mask.shape, mask.dtype)
    mblocks = list(np.ndindex(*[len(c) for c in layout.mchunks]))
    if fmt == "bits":
        chunks = layout.bits_chunks()
        if isinstance(chunks, str):  # blocks are not whole bytes: unpack and lay the mask out in blocks
            unpacked = mask.map_blocks(_unpack, dtype=np.bool_, chunks=(tuple(8 * c for c in mask.chunks[0]),),
                                       meta=np.empty(0, dtype=np.bool_))
            mask = unpacked[:math.prod(layout.mshape)].reshape(layout.mshape).rechunk(layout.mchunks)
            fmt = "bool"
        else:  # mask block j is block f (its C order) of the rechunked bits
            mask = mask.rechunk((tuple(chunks),))
            flat = {j: f for f, j in enumerate(mblocks)}
    if fmt == "bool":
        mask = mask.rechunk(layout.mchunks)
    token = tokenize(g.name, mask.name, call.p, chunk_backend, layout.noise_shape)
    name = f"dropout-backward-{token}"
    dsk: dict[Any, Any] = {}
    for idx in np.ndindex(*g.numblocks):
        j = layout.mask_block(idx)
        fn = functools.partial(_backward_mask_block, p=call.p, chunk_backend=chunk_backend,
                               noise_shape=layout.block_noise_shape(j))
        dsk[(name,) + idx] = (fn, (g.name,) + idx, (mask.name,) + ((flat[j],) if fmt == "bits" else j))
    graph = HighLevelGraph.from_collections(name, dsk, dependencies=[g, mask])
    return da.Array(graph, name, chunks=g.chunks, dtype=g.dtype, meta=_meta(g.ndim, g.dtype))
