"""Framework-free plumbing of the framework bridges (kernels/torch_bridge.py): foreign device
arrays in, our CUDA kernels on them, no host round trip. Imports neither torch nor numba.cuda
until used.

:func:`device_view` turns anything with ``__cuda_array_interface__`` (a torch CUDA tensor,
CuPy, JAX) into a numba device array on the same memory (``numba.cuda.as_cuda_array``). Under
the CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``) there is no device memory: the interface's
pointer is host memory, and the view is the simulator's array over that memory (zero-copy as
well), so the bridge's device path runs, and is tested, without a GPU.

:func:`cuda_forward` / :func:`cuda_backward` call ``kernels.cuda`` on such views, writing into
the caller's output array (``out``), so the result lands in memory the framework owns.
"""

from __future__ import annotations

import ctypes
from typing import Any

import numpy as np

from reference import vocab


def has_interface(a: Any) -> bool:
    return hasattr(a, "__cuda_array_interface__")


def _simulated_view(iface: dict) -> Any:
    """The simulator's device array over the host memory an interface's pointer names."""
    from numba.cuda.simulator.cudadrv.devicearray import FakeCUDAArray

    dtype = np.dtype(iface["typestr"])
    shape = tuple(iface["shape"])
    ptr = iface["data"][0]
    strides = iface.get("strides")  # None: C-contiguous
    n = int(np.prod(shape)) if shape else 1
    nbytes = n * dtype.itemsize
    if strides is not None and n:
        nbytes = dtype.itemsize + sum((d - 1) * s for d, s in zip(shape, strides))
    buf = (ctypes.c_char * max(nbytes, 1)).from_address(ptr) if ptr else bytearray(max(nbytes, 1))
    host = np.ndarray(shape, dtype, buffer=buf, strides=strides)
    return FakeCUDAArray(host)


def device_view(a: Any, dtype: Any = None) -> Any:
    """A numba device array on ``a``'s memory (``a`` itself if numba's own); ``dtype`` reinterprets
    the elements (same itemsize: bfloat16 travels as int16, which the interface can name)."""
    from numba import cuda

    if hasattr(a, "copy_to_host"):
        d = a
    elif not has_interface(a):
        raise TypeError(f"{type(a).__name__} has no __cuda_array_interface__")
    elif vocab.cuda_simulated():
        d = _simulated_view(a.__cuda_array_interface__)
    else:
        d = cuda.as_cuda_array(a)
    return d if dtype is None or np.dtype(dtype) == d.dtype else d.view(np.dtype(dtype))


def cuda_forward(x: Any, p: float, *, seed: int, offset: int, out: Any, mask_format: str | None = "bits",
                 noise_shape: tuple | None = None, dtype: Any = None) -> Any:
    """Our CUDA forward on device arrays: ``out`` (a device array, or ``x`` for in place) is
    written; returns the mask as a numba device array (None for ``mask_format=None``)."""
    from kernels import cuda as kcuda

    xd = device_view(x, dtype)
    od = xd if out is x else device_view(out, dtype)
    _, mask = kcuda.dropout_forward(xd, p, seed=seed, offset=offset, mask_format=mask_format, out=od,
                                    noise_shape=noise_shape)
    return mask


def cuda_backward(grad_y: Any, p: float, *, out: Any, mask: Any = None, seed: int | None = None, offset: int = 0,
                  noise_shape: tuple | None = None, dtype: Any = None) -> None:
    """Our CUDA backward on device arrays, into ``out``: the stored mask (a device array or an
    object with the interface) or the mask regenerated from ``(seed, offset)``."""
    from kernels import cuda as kcuda

    gd = device_view(grad_y, dtype)
    od = device_view(out, dtype)
    md = None if mask is None else device_view(mask)
    kcuda.dropout_backward(gd, p, mask=md, seed=None if md is not None else seed, offset=offset, out=od,
                           noise_shape=noise_shape)
