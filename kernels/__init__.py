"""Dropout kernels: ``BACKENDS``, the backends' view of the one registry (reference/registry.py).

``BACKENDS`` maps a name to a module exposing ``dropout_forward`` and ``dropout_backward``
with the same signature and contract (docs/RNG_STREAM.md). ``reference`` is the NumPy
oracle; ``cpu`` the Numba parallel kernels; ``cuda`` the numba.cuda kernels, listed when a
GPU or the CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``) is present; ``dask`` (Dask arrays in
and out, any chunking), listed when the ``[dask]`` extra is installed.

Numba takes about 0.2 s to import and numba.cuda 0.2 s more, so ``import kernels`` imports
neither (nor ml_dtypes, nor the checker): the entries are resolved on first use, and ``cuda``
without importing numba.cuda on a machine that shows no NVIDIA driver.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from collections.abc import Iterator, Mapping
from types import ModuleType

from reference import registry, vocab

_DRIVER_SIGNS = ("/dev/nvidiactl", "/proc/driver/nvidia/version", "/dev/dxg")  # Linux, WSL


def cuda_present() -> bool:
    """A GPU driver or the simulator is there (cheap: numba.cuda is not imported)."""
    return vocab.cuda_simulated() or any(os.path.exists(p) for p in _DRIVER_SIGNS)


def _load(entry: registry.Entry) -> ModuleType | None:
    """The backend module of a registry row, or None where it cannot run here."""
    if entry.name == "cuda" and not cuda_present():
        return None  # no simulator, no driver: spare the numba.cuda import
    if entry.arrays == "dask" and importlib.util.find_spec("dask") is None:
        return None
    try:
        module = importlib.import_module(entry.target)
    except ImportError:  # an extra not installed (numba-cuda, dask without dask.array's needs)
        return None
    except Exception:  # numba-cuda installed but broken: the CPU backends still work
        if entry.name == "cuda":
            return None
        raise
    available = getattr(module, "is_available", None)
    return module if available is None or available() else None


class _Backends(Mapping):
    """A dict of backends whose entries are found on first use (None: not available here)."""

    def __init__(self, entries):
        self._entries = {e.name: e for e in entries}
        self._found: dict[str, ModuleType | None] = {}

    def _find(self, name: str) -> ModuleType | None:
        if name not in self._found:
            self._found[name] = _load(self._entries[name])
        return self._found[name]

    def __getitem__(self, name: str) -> ModuleType:
        module = self._find(name) if name in self._entries else None
        if module is None:
            raise KeyError(name)
        return module

    def __iter__(self) -> Iterator[str]:
        return iter([name for name in self._entries if self._find(name) is not None])

    def __len__(self) -> int:
        return len(list(iter(self)))

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self._entries and self._find(name) is not None

    def __repr__(self) -> str:
        return f"BACKENDS({sorted(self)})"


BACKENDS = _Backends(e for e in registry.ENTRIES if e.role == registry.BACKEND)


def __getattr__(name: str) -> ModuleType:  # ``kernels.cpu``, ``kernels.cuda``, ``kernels.dask``, imported on first use
    if name in ("cpu", "cuda", "dask"):
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def get_backend(name: str) -> ModuleType:
    try:
        return BACKENDS[name]
    except KeyError:
        raise ValueError(f"unknown backend {name!r}; available: {sorted(BACKENDS)}") from None
