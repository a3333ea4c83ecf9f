"""What gets timed: the dropout backends of :data:`kernels.BACKENDS`, plus a ceiling and a peer.

Every provider turns one grid point (operation, mask format, n, p, dtype) into a
zero-argument callable with its inputs and outputs already allocated on its device, so
that the timed call does nothing but the operation (and whatever allocation the API itself
makes, such as a fresh mask per forward call).

- ``reference``, ``cpu``, ``cuda``: the project's backends, in every operation of
  ``bench.grid.OPERATIONS`` (elementwise, channel with ``noise_shape``, in place with
  ``out=x`` / ``out=grad_y``). The ``cuda`` backend is fed numba device arrays with a device
  ``out=``, so no host copy is timed.
- ``copy-cpu`` / ``copy-cuda``: the ceiling. A Numba ``prange`` loop ``out[i] = x[i]`` on the
  CPU (16-bit data viewed as ``uint16``: Numba has no bfloat16); a device-to-device copy
  (``cuMemcpyDtoD``) on the GPU. It moves ``2 * itemsize`` bytes per element, the least any
  dropout can.
- ``torch-cpu`` / ``torch-cuda``: the peer, where PyTorch is installed: ``F.dropout``
  (forward without a kept mask; with ``inplace=True`` for ``forward_inplace``),
  ``torch.native_dropout`` (forward with a bool mask),
  ``torch.ops.aten.native_dropout_backward`` (backward from a stored bool mask),
  ``F.dropout2d`` (``forward_channel``, mask not kept) and its autograd backward
  ``grad_y * noise`` (``backward_channel`` from the stored ``(N, C, 1, 1)`` noise, counted as
  a bool mask). PyTorch cannot regenerate a mask, store one as bits, or run
  ``native_dropout`` / its backward in place; those points are skipped.
- ``--impl IMPL`` (:class:`ImplProvider`): any implementation of
  ``reference.conformance.loader.implementation`` (NumPy in and out, host clock), at the points its
  capabilities cover (channel and in-place rows only where it has ``noise_shape`` /
  ``inplace`` capabilities).

The inputs (allocated as users allocate them, shared by consecutive points) come from
``bench.inputs``. The registry's backends whose arrays are not NumPy's (``dask``) are no
providers (:data:`NOT_PROVIDERS`); each has a study in ``bench/studies/``.

In-place points restore their input from a pristine copy before every timed call,
untimed (``fn.setup``, see ``bench.timing.measure``): repeated in-place dropout would
otherwise turn the data into zeros within a few calls, and the 16-bit conversions are
faster on zeros than on the data the other rows use.
"""

from __future__ import annotations

import functools
import importlib.util

import numpy as np

from reference import registry, vocab

from . import env, grid, traffic
from .inputs import cuda_input, host_input, placed_copy, placed_empty, raw16, shape_of, torch_input

SEED = 0x5EED_D20F


def footprint(provider: Provider, point) -> dict[str, int]:
    """Bytes one grid point holds at its peak, per memory ('host'; 'cuda' on a real GPU), erring
    on the large side: its input (twice while it is placed) and output; the mask each call
    returns, or for a stored-mask backward the forward that made the mask (its output, the
    mask and the mask's placed copy); the NumPy reference's temporaries (the stream's words,
    the bool mask and that mask as floats, the unpacked bits, the Philox chunk's arrays);
    PyTorch's output and mask or noise (it takes no ``out=``)."""
    from reference.dropout import CHUNK_BLOCKS

    n, itemsize = point.n, traffic.itemsize(point.dtype)
    op = point.operation
    data = n * itemsize
    copy = op in grid.COPIES
    mask = 0 if copy else traffic.mask_bytes(point.mask_format, grid.mask_elements(op, n))
    if copy:
        arrays = 2 * data
    elif grid.direction(op) == "backward" and point.mask_format is not None:
        arrays = 3 * data + 2 * mask
    else:
        arrays = 2 * data + mask
    if (provider.name == "reference" or provider.kind == "impl") and not copy:
        arrays += (4 + 1 + itemsize + 1) * n + 20 * 8 * min(n // 4 + 1, CHUNK_BLOCKS)
    if provider.kind == "peer":
        arrays += data + n
    if provider.device != "cuda":
        return {"host": arrays}
    if vocab.cuda_simulated():  # the simulator's device arrays are host arrays
        return {"host": 2 * data + arrays}
    return {"host": 2 * data, "cuda": arrays}


def synchronize(device: str) -> None:
    if device == "cuda":
        from numba import cuda

        cuda.synchronize()


# --- providers ----------------------------------------------------------------------

class Provider:
    """One thing to time. Subclasses say what they support and how to prepare a call."""

    name: str
    device: str  # 'cpu' or 'cuda'
    kind: str  # 'backend', 'ceiling' or 'peer'
    clock: str = "host"  # see bench.timing.measure

    def supports(self, operation: str, mask_format) -> bool:
        raise NotImplementedError

    def supports_dtype(self, dtype: str) -> bool:
        return dtype in vocab.DTYPES

    def prepare(self, operation: str, mask_format, n: int, p: float, dtype: str):
        """A zero-argument callable that runs the operation once on preallocated inputs."""
        raise NotImplementedError

    def threads(self):
        """CPU threads the provider uses (None for GPU providers)."""
        return None

    def synchronize(self) -> None:
        synchronize(self.device)

    @property
    def device_name(self) -> str:
        return env.device_name(self.device)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"


def _numba_threads():
    import numba

    return int(numba.get_num_threads())


class BackendProvider(Provider):
    """A module of :data:`kernels.BACKENDS`: forward in every mask format, backward from the
    seed (``mask_format=None``: the mask is regenerated) or from a stored mask."""

    kind = "backend"

    def __init__(self, name: str, module, device: str):
        self.name, self.module, self.device = name, module, device
        self.clock = "cuda" if device == "cuda" else "host"

    def supports(self, operation, mask_format):
        return (operation in grid.OPERATIONS or operation in grid.AS_CALLED) and mask_format in vocab.MASK_FORMATS

    def _arrays(self, n, dtype):
        if self.device == "cuda":
            from numba import cuda

            return cuda_input(n, dtype), cuda.device_array(n, dtype=vocab.np_dtype(dtype))
        return host_input(n, dtype), placed_empty(n, dtype)

    def _mask(self, x, p, mask_format, noise_shape):
        _, mask = self.module.dropout_forward(x, p, seed=SEED, mask_format=mask_format, noise_shape=noise_shape)
        return placed_copy(mask) if isinstance(mask, np.ndarray) else mask

    def prepare(self, operation, mask_format, n, p, dtype):
        if not self.supports(operation, mask_format):
            raise ValueError(f"{self.name} does not support {operation} with mask {mask_format!r}")
        mod = self.module
        shape, ns = shape_of(operation, n)
        x, out = self._arrays(n, dtype)
        x, out = x.reshape(shape), out.reshape(shape)
        if grid.variant(operation) == "inplace":
            x0, x = x, out  # out is both input and output; x0 the pristine input
            setup = _restorer(x, x0, self.device)
        mask = self._mask(x0 if grid.variant(operation) == "inplace" else x, p, mask_format, ns) \
            if grid.direction(operation) == "backward" and mask_format is not None else None
        if grid.variant(operation) == "alloc":  # as users call it: a new output (and mask) per call
            def run():
                return mod.dropout_forward(x, p, seed=SEED, mask_format=mask_format)
        elif grid.direction(operation) == "forward":
            def run():
                return mod.dropout_forward(x, p, seed=SEED, mask_format=mask_format, out=out, noise_shape=ns)
        elif mask_format is None:
            def run():
                return mod.dropout_backward(x, p, seed=SEED, out=out, noise_shape=ns)
        else:
            def run():
                return mod.dropout_backward(x, p, mask=mask, out=out, noise_shape=ns)
        if grid.variant(operation) == "inplace":
            run.setup = setup
        return run

    def threads(self):
        return None if self.device == "cuda" else _numba_threads()


def _restorer(work, pristine, device: str):
    """``setup()``: copy ``pristine`` back into ``work`` (the input of an in-place call), on the
    device that holds them; returns None (pytest-benchmark's setup may return arguments)."""
    if device == "cuda":
        w, p0 = raw16(work.reshape(work.size)), raw16(pristine.reshape(pristine.size))

        def setup():
            w.copy_to_device(p0)  # device to device, queued before the timed call
        return setup

    def setup():
        np.copyto(work, pristine)
    return setup


@functools.cache
def _parallel_copy():
    from numba import njit, prange

    @njit(parallel=True, nogil=True)
    def parallel_copy(x, out):
        for i in prange(x.size):
            out[i] = x[i]

    return parallel_copy


class CopyProvider(Provider):
    """The ceiling: the same bytes as dropout without a mask, and no work at all."""

    kind = "ceiling"

    def __init__(self, device: str):
        self.device = device
        self.name = f"copy-{device}"
        self.clock = "cuda" if device == "cuda" else "host"

    def supports(self, operation, mask_format):
        return operation in grid.COPIES and mask_format is None

    def prepare(self, operation, mask_format, n, p, dtype):
        if not self.supports(operation, mask_format):
            raise ValueError(f"{self.name} only copies")
        if operation == "copy_alloc":  # a copy that allocates its output: np.copy(x)
            return self._allocating(n, dtype)
        if self.device == "cuda":
            from numba import cuda

            x = raw16(cuda_input(n, dtype))
            out = cuda.device_array(n, dtype=vocab.np_dtype(dtype))
            out16 = raw16(out)

            def run():
                out16.copy_to_device(x)  # device to device
                return out
            return run
        x = host_input(n, dtype)
        out = placed_empty(n, dtype)
        x16, out16 = raw16(x), raw16(out)  # Numba has no bfloat16: copy the 16-bit patterns
        copy = _parallel_copy()

        def run():
            copy(x16, out16)
            return out
        return run

    def _allocating(self, n, dtype):
        if self.device == "cuda":
            from numba import cuda

            x = raw16(cuda_input(n, dtype))

            def run():
                out = cuda.device_array_like(x)
                out.copy_to_device(x)
                return out
            return run
        x = host_input(n, dtype)

        def run():
            return np.copy(x)
        return run

    def threads(self):
        return None if self.device == "cuda" else _numba_threads()


class TorchProvider(Provider):
    """PyTorch's dropout on the same device: the peer to beat."""

    kind = "peer"

    def __init__(self, device: str):
        self.device = device
        self.name = f"torch-{device}"
        self.clock = "torch-cuda" if device == "cuda" else "host"

    SUPPORTED = {("forward", None), ("forward", "bool"), ("backward", "bool"), ("forward_channel", None),
                 ("backward_channel", "bool"), ("forward_inplace", None),
                 ("forward_alloc", None), ("forward_alloc", "bool")}  # PyTorch allocates anyway

    def supports(self, operation, mask_format):
        return (operation, mask_format) in self.SUPPORTED

    def prepare(self, operation, mask_format, n, p, dtype):
        import torch
        import torch.nn.functional as F

        if not self.supports(operation, mask_format):
            raise ValueError(f"{self.name} does not support {operation} with mask {mask_format!r}")
        torch.manual_seed(SEED)
        if operation == "forward_alloc":
            operation = "forward"  # F.dropout / native_dropout always return new tensors
        shape, ns = shape_of(operation, n)
        x = torch_input(n, dtype, self.device).reshape(shape)
        if operation == "forward_inplace":
            work = x.clone()

            def run():
                return F.dropout(work, p, training=True, inplace=True)

            def setup():
                work.copy_(x)
            run.setup = setup
            return run
        if operation == "forward_channel":
            def run():
                return F.dropout2d(x, p, training=True)
            return run
        if operation == "backward_channel":
            # what autograd runs for F.dropout2d's backward: grad_y times the saved, scaled noise
            noise = torch.empty(ns, dtype=x.dtype, device=x.device).bernoulli_(1.0 - p)
            noise.div_(1.0 - p) if p < 1.0 else noise.zero_()

            def run():
                return x * noise
            return run
        if operation == "forward" and mask_format is None:
            def run():
                return F.dropout(x, p, training=True)
            return run
        if operation == "forward":
            def run():
                return torch.native_dropout(x, p, True)
            return run
        _, mask = torch.native_dropout(x, p, True)
        scale = 1.0 / (1.0 - p) if p < 1.0 else 0.0
        backward = torch.ops.aten.native_dropout_backward

        def run():
            return backward(x, mask, scale)
        return run

    def threads(self):
        if self.device == "cuda":
            return None
        import torch

        return int(torch.get_num_threads())

    def synchronize(self):
        if self.device == "cuda":
            import torch

            torch.cuda.synchronize()


class ImplProvider(Provider):
    """An implementation named by an IMPL string (``dropout-bench --impl``), through
    ``reference.conformance.loader.implementation``: NumPy in and out, timed on the host clock (so the
    time includes whatever copies to and from a device the implementation makes), at the
    points its capabilities cover: dtypes, mask formats, backward (regenerated or stored),
    and the channel and in-place rows only where it declares ``noise_shape`` / ``inplace``."""

    kind = "impl"
    device = "cpu"

    def __init__(self, spec: str, impl, name: str | None = None):
        self.spec, self.impl = spec, impl
        self.name = name or spec

    def supports_dtype(self, dtype):
        return self.impl.capabilities.has(f"dtype:{dtype}")

    def supports(self, operation, mask_format):
        caps = self.impl.capabilities
        direction, var = grid.direction(operation), grid.variant(operation)
        if operation not in grid.OPERATIONS:
            return False
        # channel rows need noise_shape (True, or "channel" only), in-place rows out=x: capabilities
        # an implementation declares or its probe finds (False where the protocol lacks them)
        if var == "channel" and not getattr(caps, "noise_shape", False):
            return False
        if var == "inplace" and not getattr(caps, "inplace", False):
            return False
        if direction == "forward":
            return mask_format is None or caps.has(f"mask:{mask_format}")
        return caps.has("backward") and (caps.has("regenerate") if mask_format is None
                                         else caps.has(f"mask:{mask_format}"))

    def prepare(self, operation, mask_format, n, p, dtype):
        if not (self.supports(operation, mask_format) and self.supports_dtype(dtype)):
            from reference.conformance.protocol import Unsupported

            raise Unsupported(f"{self.name} does not support {operation} with mask {mask_format!r} in {dtype}")
        impl = self.impl
        shape, ns = shape_of(operation, n)
        x = host_input(n, dtype).reshape(shape)
        kw = {} if ns is None else {"noise_shape": ns}
        mask = None
        if grid.direction(operation) == "backward" and mask_format is not None:
            _, mask = impl.forward(x, p, seed=SEED, mask_format=mask_format, **kw)
        setup = None
        if grid.variant(operation) == "inplace":
            work = placed_copy(x)
            setup = _restorer(work, x, "cpu")
            x = kw["out"] = work
        if grid.direction(operation) == "forward":
            def run():
                return impl.forward(x, p, seed=SEED, mask_format=mask_format, **kw)
        elif mask is None:
            def run():
                return impl.backward(x, p, seed=SEED, **kw)
        else:
            def run():
                return impl.backward(x, p, mask=mask, **kw)
        if setup is not None:
            run.setup = setup
        return run

    def threads(self):
        return _numba_threads()


@functools.cache
def impl_provider(spec: str) -> ImplProvider:
    """The provider of ``--impl spec``; ``ValueError`` (in words) for an unknown or unusable IMPL.
    It is called ``spec``, or ``impl:spec`` where that name is already a provider's."""
    from reference.conformance import loader

    spec = spec.strip()
    try:
        impl = loader.load(spec)
    except ValueError as exc:
        raise ValueError(f"--impl {spec}: {exc}") from None
    except Exception as exc:  # a user's module may fail in any way on import or probing
        raise ValueError(f"--impl {spec}: cannot load it: {type(exc).__name__}: {exc}") from None
    taken = spec in available() or spec in ("copy", "torch") or spec.startswith(("copy-", "torch-"))
    return ImplProvider(spec, impl, name=f"impl:{spec}" if taken else spec)


# --- registry -----------------------------------------------------------------------

def torch_missing(name: str = "torch") -> str:
    """What ``dropout-check`` says of a missing optional package, for PyTorch (the peer)."""
    return (f"{name!r} needs a package that is not installed (pip install -e \".[peers]\"; "
            "PyTorch's CPU-only wheel: pip install torch --index-url https://download.pytorch.org/whl/cpu)")


TORCH_MISSING = torch_missing("torch")


def torch_installed() -> bool:
    return importlib.util.find_spec("torch") is not None


@functools.cache
def torch_cuda_available() -> bool:
    if not torch_installed() or vocab.cuda_simulated():
        return False
    import torch

    return bool(torch.cuda.is_available())


def _not_provider(entry: registry.Entry) -> str:
    """Why a backend of the registry whose arrays are not NumPy's is no provider here."""
    study = f"bench.studies.{entry.name}_scale"
    where = f"; python -m {study} benchmarks it" if importlib.util.find_spec(study) else ""
    return f"the {entry.name} backend takes {entry.arrays} arrays, not NumPy ones{where}"


#: The registry's backends that take other arrays than NumPy's (and, for ``cuda``, numba
#: device arrays): not providers (each has its own study in bench/studies/).
NOT_PROVIDERS = {e.name: _not_provider(e) for e in registry.ENTRIES
                 if e.role == registry.BACKEND and e.arrays != "numpy"}


def backend_names() -> list[str]:
    """The backends available here that are providers, in the registry's order."""
    import kernels

    return [n for n in kernels.BACKENDS if n in registry.NUMPY_BACKENDS]


@functools.cache
def get(name: str) -> Provider:
    """The provider called ``name``; ``ValueError`` when it is unknown or unavailable here."""
    import kernels

    if name in NOT_PROVIDERS:
        raise ValueError(f"{name}: {NOT_PROVIDERS[name]}")
    if name in kernels.BACKENDS:
        return BackendProvider(name, kernels.BACKENDS[name], "cuda" if name == "cuda" else "cpu")
    if name == "copy-cpu":
        return CopyProvider("cpu")
    if name in ("cuda", "copy-cuda", "torch-cuda") and "cuda" not in kernels.BACKENDS:
        raise ValueError(f"{name}: no CUDA GPU here (nor the CUDA simulator)")
    if name == "copy-cuda":
        return CopyProvider("cuda")
    if name.startswith("torch-") and not torch_installed():
        raise ValueError(torch_missing(name))
    if name == "torch-cpu":
        return TorchProvider("cpu")
    if name == "torch-cuda":
        if not torch_cuda_available():
            raise ValueError("torch-cuda: this PyTorch cannot use a GPU here (a CPU-only wheel, or the CUDA simulator)")
        return TorchProvider("cuda")
    raise ValueError(f"provider {name!r} is unknown or unavailable here; available: {available()}")


def available() -> list[str]:
    """Every provider that can run here, backends first."""
    import kernels

    names = backend_names() + ["copy-cpu"]
    if "cuda" in kernels.BACKENDS:
        names.append("copy-cuda")
    if torch_installed():
        names.append("torch-cpu")
    if torch_cuda_available():
        names.append("torch-cuda")
    return names


def peers_for(devices) -> list[str]:
    """The ceiling and the peer (where available) for each device in ``devices``."""
    names = []
    for device in devices:
        for name in (f"copy-{device}", f"torch-{device}"):
            try:
                get(name)
            except ValueError:
                continue
            names.append(name)
    return names


def resolve(names, *, peers: bool = True) -> list[Provider]:
    """Providers for ``names`` (backends or peers; 'copy' / 'torch' mean the ones on the
    devices of the named backends), plus the ceiling and peer of each device when ``peers``."""
    chosen: list[str] = []
    aliases = [n for n in names if n in ("copy", "torch")]
    if "torch" in aliases and not torch_installed():
        raise ValueError(TORCH_MISSING)
    for name in names:
        if name not in ("copy", "torch") and name not in chosen:
            chosen.append(name)
    devices = []
    for name in chosen:
        device = get(name).device
        if device not in devices:
            devices.append(device)
    extra = peers_for(devices) if peers else []
    for alias in aliases:
        extra += [n for n in peers_for(devices or ["cpu"]) if n.startswith(alias + "-")]
    for name in extra:
        if name not in chosen:
            chosen.append(name)
    return [get(name) for name in chosen]
