"""Dropout kernels and the one registry that tests and benchmarks parametrize over.

``BACKENDS`` maps a name to a module exposing ``dropout_forward`` and ``dropout_backward``
with the same signature and contract (docs/RNG_STREAM.md). ``reference`` is the NumPy
oracle; ``cpu`` the Numba parallel kernels; ``cuda`` the numba.cuda kernels, listed when a
GPU or the CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``) is present.
"""

from __future__ import annotations

from reference import dropout as _reference

from . import cpu

BACKENDS = {"reference": _reference, "cpu": cpu}


def _cuda_backend():
    try:
        from . import cuda
    except Exception:  # numba-cuda missing or broken: the CPU backends still work
        return None
    return cuda if cuda.is_available() else None


_cuda = _cuda_backend()
if _cuda is not None:
    BACKENDS["cuda"] = _cuda


def get_backend(name: str):
    try:
        return BACKENDS[name]
    except KeyError:
        raise ValueError(f"unknown backend {name!r}; available: {sorted(BACKENDS)}") from None
