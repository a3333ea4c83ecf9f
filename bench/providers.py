"""What gets timed: the dropout backends of :data:`kernels.BACKENDS`, plus a ceiling and a peer.

Every provider turns one grid point (operation, mask format, n, p, dtype) into a
zero-argument callable with its inputs and outputs already allocated on its device, so
that the timed call does nothing but the operation (and whatever allocation the API itself
makes, such as a fresh mask per forward call).

- ``reference``, ``cpu``, ``cuda``: the project's backends. The ``cuda`` backend is fed
  numba device arrays with a device ``out=``, so no host copy is timed.
- ``copy-cpu`` / ``copy-cuda``: the ceiling. A Numba ``prange`` loop ``out[i] = x[i]`` on the
  CPU; a device-to-device copy (``cuMemcpyDtoD``) on the GPU. It moves ``2 * itemsize`` bytes
  per element, the least any dropout can.
- ``torch-cpu`` / ``torch-cuda``: the peer, where PyTorch is installed: ``F.dropout``
  (forward without a kept mask), ``torch.native_dropout`` (forward with a bool mask) and
  ``torch.ops.aten.native_dropout_backward`` (backward from a stored bool mask). PyTorch
  cannot regenerate a mask or store one as bits; those points are skipped.
"""

from __future__ import annotations

import functools
import importlib.util

import numpy as np

from . import env, traffic

SEED = 0x5EED_D20F
MASK_FORMATS = (None, "bool", "bits")


# --- inputs, shared by consecutive points of the same size and dtype -------------------

# Where a buffer starts within a 4 KiB page, per role. The CPU kernel's speed depends on
# where its input, output and mask lie relative to each other (two arrays that malloc
# placed back to back can make the stored-mask backward 4x slower), so the benchmark does
# not leave that to malloc: every host buffer is a fresh page-aligned block, shifted by
# its role's offset, and filled by one thread before use.
PLACEMENT = {"x": 0, "out": 1024, "mask": 2048}


def placed_empty(shape, dtype, role: str) -> np.ndarray:
    """An uninitialized array on a fresh page-aligned buffer, shifted by ``PLACEMENT[role]``."""
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape)) * dtype.itemsize
    buf = np.empty(nbytes + 8192, dtype=np.uint8)
    start = (-buf.ctypes.data) % 4096 + PLACEMENT[role]
    a = buf[start:start + nbytes].view(dtype).reshape(shape)
    a.fill(0)  # first touch here, not inside the timed calls
    return a


def placed_copy(a: np.ndarray, role: str) -> np.ndarray:
    b = placed_empty(a.shape, a.dtype, role)
    b[...] = a
    return b


@functools.lru_cache(maxsize=1)
def host_input(n: int, dtype: str) -> np.ndarray:
    """``n`` values in [-1, 1) of ``dtype`` (the data does not change the speed of dropout)."""
    rng = np.random.default_rng(n)
    x = rng.random(n, dtype=np.float32 if np.dtype(dtype) == np.float32 else np.float64)
    x *= 2
    x -= 1
    return placed_copy(x, "x")


@functools.lru_cache(maxsize=1)
def cuda_input(n: int, dtype: str):
    from numba import cuda

    return cuda.to_device(host_input(n, dtype))


@functools.lru_cache(maxsize=1)
def torch_input(n: int, dtype: str, device: str):
    import torch

    t = torch.from_numpy(host_input(n, dtype))
    return t.to(device) if device != "cpu" else t


def footprint(provider: "Provider", point) -> dict[str, int]:
    """Bytes one grid point holds at its peak, per memory ('host'; 'cuda' on a real GPU), erring
    on the large side: its input (twice while it is placed) and output; the mask each call
    returns, or for a stored-mask backward the forward that made the mask (its output, the
    mask and the mask's placed copy); the NumPy reference's temporaries (the stream's words,
    the bool mask and that mask as floats, the unpacked bits, the Philox chunk's arrays);
    PyTorch's output and mask or noise (it takes no ``out=``)."""
    from reference.dropout import _CHUNK_BLOCKS

    n, itemsize = point.n, np.dtype(point.dtype).itemsize
    data, mask = n * itemsize, traffic.mask_bytes(point.mask_format, n)
    if point.operation == "copy":
        arrays = 2 * data
    elif point.operation == "backward" and point.mask_format is not None:
        arrays = 3 * data + 2 * mask
    else:
        arrays = 2 * data + mask
    if provider.name == "reference" and point.operation != "copy":
        arrays += (4 + 1 + itemsize + 1) * n + 20 * 8 * min(n // 4 + 1, _CHUNK_BLOCKS)
    if provider.kind == "peer":
        arrays += data + n
    if provider.device != "cuda":
        return {"host": arrays}
    if env.cuda_simulated():  # the simulator's device arrays are host arrays
        return {"host": 2 * data + arrays}
    return {"host": 2 * data, "cuda": arrays}


def release_inputs() -> None:
    """Drop the cached inputs (frees the largest arrays between sweeps)."""
    for cached in (torch_input, cuda_input, host_input):
        cached.cache_clear()


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
        return operation in ("forward", "backward") and mask_format in MASK_FORMATS

    def _arrays(self, n, dtype):
        if self.device == "cuda":
            from numba import cuda

            return cuda_input(n, dtype), cuda.device_array(n, dtype=np.dtype(dtype))
        return host_input(n, dtype), placed_empty(n, dtype, "out")

    def prepare(self, operation, mask_format, n, p, dtype):
        if not self.supports(operation, mask_format):
            raise ValueError(f"{self.name} does not support {operation} with mask {mask_format!r}")
        mod = self.module
        x, out = self._arrays(n, dtype)
        if operation == "forward":
            def run():
                return mod.dropout_forward(x, p, seed=SEED, mask_format=mask_format, out=out)
            return run
        if mask_format is None:
            def run():
                return mod.dropout_backward(x, p, seed=SEED, out=out)
            return run
        _, mask = mod.dropout_forward(x, p, seed=SEED, mask_format=mask_format)
        if isinstance(mask, np.ndarray):
            mask = placed_copy(mask, "mask")

        def run():
            return mod.dropout_backward(x, p, mask=mask, out=out)
        return run

    def threads(self):
        return None if self.device == "cuda" else _numba_threads()


@functools.lru_cache(maxsize=None)
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
        return operation == "copy" and mask_format is None

    def prepare(self, operation, mask_format, n, p, dtype):
        if not self.supports(operation, mask_format):
            raise ValueError(f"{self.name} only copies")
        if self.device == "cuda":
            from numba import cuda

            x = cuda_input(n, dtype)
            out = cuda.device_array(n, dtype=np.dtype(dtype))

            def run():
                out.copy_to_device(x)  # device to device
                return out
            return run
        x = host_input(n, dtype)
        out = placed_empty(n, dtype, "out")
        copy = _parallel_copy()

        def run():
            copy(x, out)
            return out
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

    def supports(self, operation, mask_format):
        return (operation, mask_format) in {("forward", None), ("forward", "bool"), ("backward", "bool")}

    def prepare(self, operation, mask_format, n, p, dtype):
        import torch
        import torch.nn.functional as F

        if not self.supports(operation, mask_format):
            raise ValueError(f"{self.name} does not support {operation} with mask {mask_format!r}")
        torch.manual_seed(SEED)
        x = torch_input(n, dtype, self.device)
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


# --- registry -----------------------------------------------------------------------

TORCH_MISSING = ("PyTorch is not installed (the optional peer): pip install -e \".[peers]\", "
                 "or a CPU-only wheel: pip install torch --index-url https://download.pytorch.org/whl/cpu")


def torch_installed() -> bool:
    return importlib.util.find_spec("torch") is not None


@functools.lru_cache(maxsize=None)
def torch_cuda_available() -> bool:
    if not torch_installed() or env.cuda_simulated():
        return False
    import torch

    return bool(torch.cuda.is_available())


def backend_names() -> list[str]:
    import kernels

    return list(kernels.BACKENDS)


@functools.lru_cache(maxsize=None)
def get(name: str) -> Provider:
    """The provider called ``name``; ``ValueError`` when it is unknown or unavailable here."""
    import kernels

    if name in kernels.BACKENDS:
        return BackendProvider(name, kernels.BACKENDS[name], "cuda" if name == "cuda" else "cpu")
    if name == "copy-cpu":
        return CopyProvider("cpu")
    if name in ("cuda", "copy-cuda", "torch-cuda") and "cuda" not in kernels.BACKENDS:
        raise ValueError(f"{name}: no CUDA GPU here (nor the CUDA simulator)")
    if name == "copy-cuda":
        return CopyProvider("cuda")
    if name.startswith("torch-") and not torch_installed():
        raise ValueError(f"{name}: {TORCH_MISSING}")
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

    names = list(kernels.BACKENDS) + ["copy-cpu"]
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
