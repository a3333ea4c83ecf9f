"""The one registry of dropout implementations, for the project's tests, the benchmarks and
the checker, and the loader of IMPL strings.

An IMPL string is

* a registry name: our backends (``reference``, ``cpu``, ``cuda`` where a GPU or the CUDA
  simulator is present) or a built-in adapter (``torch-dropout``, ``torch-nn-dropout``,
  ``torch-native-dropout``, ``textbook-numpy``, ``textbook-torch``, ``quant8``);
* ``package.module:attribute`` (or ``package.module``) naming an Implementation, an object
  or module with the backends' API (``dropout_forward`` / ``dropout_backward``), or a plain
  callable ``f(x, p, seed) -> y`` (NumPy in and out).

:func:`load` turns one into a :class:`reference.conformance.impl.Implementation`
(memoized per string, so caches keyed by the object keep hitting).
"""

from __future__ import annotations

import functools
import importlib
import os
import sys

from reference.conformance.impl import (ALL_DTYPES, Capabilities, Implementation, as_implementation, from_api, from_callable,
                                        register_wrapper)

BACKEND_NAMES = ("reference", "cpu", "cuda")  # the backends the project's tests parametrize over
# our backends: the whole API, 16-bit formats, any noise_shape and out=x (docs/RNG_STREAM.md)
BACKEND_CAPABILITIES = Capabilities(dtypes=ALL_DTYPES, noise_shape=True, inplace=True)


def _backend(name):
    def make():
        import kernels

        mod = kernels.get_backend(name)  # ValueError when absent (no GPU, no simulator)
        impl = from_api(mod, name, claims_contract=True, capabilities=BACKEND_CAPABILITIES,
                        description=(mod.__doc__ or "").strip().split("\n")[0])
        impl.simulated = name == "cuda" and (bool(getattr(mod, "SIMULATED", False))
                                            or os.environ.get("NUMBA_ENABLE_CUDASIM") == "1")
        register_wrapper(mod, impl)  # the module itself, handed to a check, is this implementation
        return impl
    return make


def _adapter(module, factory):
    def make():
        mod = importlib.import_module(f"kernels.adapters.{module}")
        return getattr(mod, factory)()
    return make


def _quant8():
    from .adapters import quant8
    return from_api(quant8, "quant8", description="8-bit keep threshold (kernels/adapters/quant8.py): "
                    "a documented example the suite rejects")


IMPLEMENTATIONS = {
    **{n: _backend(n) for n in BACKEND_NAMES},
    "dask": _adapter("dask_arrays", "make"),  # kernels.BACKENDS["dask"] takes dask arrays: adapted
    "torch-dropout": _adapter("torch_cpu", "make_functional"),
    "torch-nn-dropout": _adapter("torch_cpu", "make_module"),
    "torch-native-dropout": _adapter("torch_cpu", "make_native"),
    "textbook-numpy": _adapter("textbook", "make_numpy"),
    "textbook-torch": _adapter("textbook", "make_torch"),
    "quant8": _quant8,
}


def names() -> list[str]:
    return list(IMPLEMENTATIONS)


def available_backends() -> list[str]:
    import kernels

    return [n for n in BACKEND_NAMES if n in kernels.BACKENDS]


def backend_module(name: str):
    """The backend module itself (the project's tests call its functions directly)."""
    import kernels

    return kernels.get_backend(name)


@functools.lru_cache(maxsize=None)
def load(spec: str) -> Implementation:
    """The Implementation an IMPL string names; ValueError when it names nothing usable."""
    spec = spec.strip()
    if spec in IMPLEMENTATIONS:
        try:
            return IMPLEMENTATIONS[spec]()
        except ImportError as e:
            raise ValueError(f"{spec!r} needs a package that is not installed: {e}") from None
    if ":" not in spec and "." not in spec:
        raise ValueError(f"unknown implementation {spec!r}: not one of {names()} "
                         "and not 'package.module:attribute'")
    modname, _, attr = spec.partition(":")
    if os.getcwd() not in sys.path:  # as `python -m` would: your module in the current directory
        sys.path.append(os.getcwd())
    try:
        obj = importlib.import_module(modname)
    except ImportError as e:
        raise ValueError(f"cannot import {modname!r} (from {spec!r}): {e}") from None
    for part in filter(None, attr.split(".")):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ValueError(f"{modname!r} has no attribute {attr!r}") from None
    return wrap(obj, name=spec)


def wrap(obj, name: str | None = None) -> Implementation:
    """An Implementation from an object: itself, the backends' API, or f(x, p, seed)."""
    if isinstance(obj, Implementation):
        return obj
    import kernels

    for bname, mod in kernels.BACKENDS.items():
        if obj is mod:
            return load(bname)
    if callable(getattr(obj, "dropout_forward", None)):
        return as_implementation(obj, name=name)
    if callable(obj):
        return from_callable(obj, name)
    raise ValueError(f"{name or obj!r} is neither an implementation of the backends' API nor a "
                     "callable f(x, p, seed) -> y")


def implementation(spec: str) -> Implementation:
    """For bench (``dropout-bench --impl IMPL``): the IMPL string as a callable object with
    ``forward(x, p, seed=..., ...)`` and ``backward(...)``, NumPy in and out."""
    return load(spec)
