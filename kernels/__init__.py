"""Dropout kernels and the one registry that tests and benchmarks parametrize over.

``BACKENDS`` maps a name to a module exposing ``dropout_forward`` and ``dropout_backward``
with the same signature and contract (docs/RNG_STREAM.md). ``reference`` is the NumPy
oracle; ``cpu`` the Numba parallel kernels; ``cuda`` the numba.cuda kernels, listed when a
GPU or the CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``) is present; ``dask`` (Dask arrays in
and out, any chunking), listed when the ``[dask]`` extra is installed.

Numba takes about 0.2 s to import and numba.cuda 0.2 s more, so ``import kernels`` imports
neither: the ``cpu`` and ``cuda`` entries are resolved on first use, and ``cuda`` without
importing numba.cuda on a machine that shows no NVIDIA driver.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from reference import dropout as _reference

import importlib

_DRIVER_SIGNS = ("/dev/nvidiactl", "/proc/driver/nvidia/version", "/dev/dxg")  # Linux, WSL


def _cuda_backend():
    from numba import config

    if not config.ENABLE_CUDASIM and not any(os.path.exists(p) for p in _DRIVER_SIGNS):
        return None  # no simulator, no driver: spare the numba.cuda import
    try:
        from . import cuda
    except Exception:  # numba-cuda missing (it is the [cuda] extra) or broken: the CPU backends still work
        return None
    return cuda if cuda.is_available() else None


def _cpu_backend():
    return importlib.import_module(".cpu", __name__)


def _dask_backend():
    """Dask arrays in and out (kernels/dask.py), where the [dask] extra is installed."""
    import importlib.util

    if importlib.util.find_spec("dask") is None:
        return None
    try:
        return importlib.import_module(".dask", __name__)
    except ImportError:  # dask without dask.array's dependencies
        return None


class _Registry(Mapping):
    """A dict of backends whose entries are found on first use (None: not available here)."""

    def __init__(self, finders):
        self._finders = dict(finders)  # name -> function returning the module or None
        self._found = {}

    def _find(self, name):
        if name not in self._found:
            self._found[name] = self._finders[name]()
        return self._found[name]

    def __getitem__(self, name):
        module = self._find(name) if name in self._finders else None
        if module is None:
            raise KeyError(name)
        return module

    def __iter__(self):
        return iter([name for name in self._finders if self._find(name) is not None])

    def __len__(self):
        return len(list(iter(self)))

    def __contains__(self, name):
        return name in self._finders and self._find(name) is not None

    def __repr__(self):
        return f"BACKENDS({sorted(self)})"


BACKENDS = _Registry({"reference": lambda: _reference, "cpu": _cpu_backend, "cuda": _cuda_backend,
                      "dask": _dask_backend})


def __getattr__(name):  # ``kernels.cpu``, ``kernels.cuda``, ``kernels.dask`` as attributes, imported on first use
    if name in ("cpu", "cuda", "dask"):
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def get_backend(name: str):
    try:
        return BACKENDS[name]
    except KeyError:
        raise ValueError(f"unknown backend {name!r}; available: {sorted(BACKENDS)}") from None
