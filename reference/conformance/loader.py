"""The loader of IMPL strings: turns a registry name (reference/registry.py) or
``package.module:attribute`` into a :class:`reference.conformance.protocol.Implementation`.

An IMPL string is

* a registry name: our backends (``reference``, ``cpu``, ``cuda`` where a GPU or the CUDA
  simulator is present, ``dask``) or a built-in adapter (``torch-dropout``,
  ``torch-nn-dropout``, ``torch-native-dropout``, ``textbook-numpy``, ``textbook-torch``,
  ``quant8``);
* ``package.module:attribute`` (or ``package.module``) naming an Implementation, an object
  or module with the backends' API (``dropout_forward`` / ``dropout_backward``), a plain
  callable ``f(x, p, seed) -> y`` (NumPy in and out), or a stateful ``f(x, p) -> y`` that
  draws from a generator it holds (checked in stateful mode; ``f.reseed(seed)`` where it has one).

:func:`load` is memoized per string, so caches keyed by the object keep hitting.
"""

from __future__ import annotations

import functools
import importlib
import os
import sys

from reference import registry, vocab

from .protocol import (
    Capabilities,
    Implementation,
    as_implementation,
    from_api,
    from_callable,
    from_stateful,
    is_stateful_signature,
    register_wrapper,
)

# our backends: the whole API, 16-bit formats, any noise_shape and out=x (docs/RNG_STREAM.md)
BACKEND_CAPABILITIES = Capabilities(dtypes=vocab.DTYPES, noise_shape=True, inplace=True)


def names() -> list[str]:
    return list(registry.names())


def _import_target(target: str):
    modname, _, attr = target.partition(":")
    obj = importlib.import_module(modname)
    for part in filter(None, attr.split(".")):
        obj = getattr(obj, part)
    return obj


def _backend(name: str) -> Implementation:
    import kernels

    mod = kernels.get_backend(name)  # ValueError when absent (no GPU, no simulator)
    impl = from_api(mod, name, claims_contract=True, capabilities=BACKEND_CAPABILITIES,
                    description=(mod.__doc__ or "").strip().split("\n")[0])
    impl.simulated = name == "cuda" and vocab.cuda_simulated()
    register_wrapper(mod, impl)  # the module itself, handed to a check, is this implementation
    return impl


def _entry(entry: registry.Entry) -> Implementation:
    if entry.role == registry.BACKEND and entry.checker is None:
        return _backend(entry.name)
    return _import_target(entry.checker or entry.target)()


@functools.cache
def load(spec: str) -> Implementation:
    """The Implementation an IMPL string names; ValueError when it names nothing usable."""
    spec = spec.strip()
    if spec in registry.BY_NAME:
        entry = registry.BY_NAME[spec]
        try:
            return _entry(entry)
        except ImportError as e:
            hint = f' (pip install -e ".[{entry.extra}]")' if entry.extra else ' (pip install -e ".[peers]")'

            raise ValueError(f"{spec!r} needs a package that is not installed{hint}: {e}") from None
        except RuntimeError as e:  # a framework that cannot start in this process (Triton imported too early)
            raise ValueError(f"{spec!r} cannot be loaded in this process: {e}") from None
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
    for entry in registry.ENTRIES:  # one of our backend modules: its registry row
        if entry.role == registry.BACKEND and sys.modules.get(entry.target) is obj:
            return load(entry.name)
    if callable(getattr(obj, "dropout_forward", None)):
        return as_implementation(obj, name=name)
    if callable(obj):
        return from_stateful(obj, name) if is_stateful_signature(obj) else from_callable(obj, name)
    raise ValueError(f"{name or obj!r} is neither an implementation of the backends' API, a "
                     "callable f(x, p, seed) -> y nor a stateful f(x, p) -> y")
