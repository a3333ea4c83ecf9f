"""The providers' inputs, shared by consecutive points of the same size and dtype.

Host arrays are allocated as users allocate them (``np.empty``, so large ones start at the
same offset within a page, wherever malloc puts them) and touched once by one thread before
any timing, so no page fault lands in a timed call but the fresh mask a forward call returns.
The input of each size and dtype is made once and cached (the last one only: the caches hold
the largest arrays of a sweep; :func:`release_inputs` drops them), on the host, as a numba
device array, or as a PyTorch tensor.
"""

from __future__ import annotations

import functools

import numpy as np

from reference import vocab

from . import grid


def placed_empty(shape, dtype) -> np.ndarray:
    """An array as a user allocates it, zeroed (touched once, here)."""
    a = np.empty(shape, dtype=np.dtype(dtype))
    a.fill(0)  # first touch here, not inside the timed calls
    return a


def placed_copy(a: np.ndarray) -> np.ndarray:
    """A copy of ``a`` in a :func:`placed_empty` array."""
    b = placed_empty(a.shape, a.dtype)
    b[...] = a
    return b


@functools.lru_cache(maxsize=1)
def host_input(n: int, dtype: str) -> np.ndarray:
    """``n`` values in [-1, 1) of ``dtype`` (float16 and bfloat16 rounded from float32)."""
    rng = np.random.default_rng(n)
    x = rng.random(n, dtype=np.float64 if dtype == "float64" else np.float32)
    x *= 2
    x -= 1
    return placed_copy(x.astype(vocab.np_dtype(dtype), copy=False))


def raw16(a):
    """16-bit float data viewed as ``uint16`` (Numba has no bfloat16); others unchanged."""
    return a.view(np.uint16) if np.dtype(a.dtype).itemsize == 2 else a


@functools.lru_cache(maxsize=1)
def cuda_input(n: int, dtype: str):
    from numba import cuda

    return cuda.to_device(host_input(n, dtype))


def torch_from_host(a: np.ndarray):
    """A tensor sharing ``a``'s memory (bfloat16 through its uint16 view)."""
    import torch

    if a.dtype.itemsize == 2 and a.dtype != np.float16:
        return torch.from_numpy(a.view(np.uint16)).view(torch.bfloat16)
    return torch.from_numpy(a)


@functools.lru_cache(maxsize=1)
def torch_input(n: int, dtype: str, device: str):
    t = torch_from_host(host_input(n, dtype))
    return t.to(device) if device != "cpu" else t


def shape_of(operation: str, n: int):
    """The input shape of ``operation`` on ``n`` elements, and the noise_shape (None: elementwise)."""
    if grid.variant(operation) != "channel":
        return (n,), None
    shape = grid.channel_map_shape(n)
    if shape is None:
        raise ValueError(f"{operation}: no (N, C, H, W) shape for n = {n}")
    from reference import noise

    return shape, noise.channel(shape)


def release_inputs() -> None:
    """Drop the cached inputs (frees the largest arrays between sweeps)."""
    for cached in (torch_input, cuda_input, host_input):
        cached.cache_clear()
