"""PyTorch bridge: our dropout kernels as a ``torch.autograd.Function``, a function and a drop-in
``nn.Module`` (:class:`KernelDropout`, the constructor of ``nn.Dropout`` plus ours).

* **CPU tensors** run the CPU kernels (``kernels.cpu``; ``backend="reference"`` for the NumPy
  oracle) on NumPy views of the tensors' own memory: ``t.detach().numpy()`` shares it, and
  bfloat16 travels as ``t.view(torch.int16).numpy().view(ml_dtypes.bfloat16)``. The output is
  allocated by torch (``torch.empty_like``) and written through its view (``out=``): no copy.
* **CUDA tensors** run ``kernels.cuda`` on ``numba.cuda.as_cuda_array`` views (the
  ``__cuda_array_interface__``; kernels/bridge_arrays.py): no host round trip. Our kernels
  launch on numba's default stream; when torch's current stream is another one, the bridge
  synchronizes it before and the device after the launch.
* **Backward**: ``mask="bits"`` (default) keeps the 1-bit packed mask from the forward (n/8
  bytes); ``mask="regenerate"`` keeps only ``(seed, offset)`` and redraws the mask (no memory,
  one more Philox pass). Both give the same bits (docs/RNG_STREAM.md).
* **Seeds**: each call takes a fresh range of stream positions from a
  :class:`kernels.generator.StreamGenerator` (per module, or shared: pass the same one), or an
  explicit ``(seed, offset)``. ``module.state_dict()`` carries the generator's state (extra state).
* ``noise_shape``, float16 / bfloat16, ``inplace=True`` (where autograd allows it, as for
  ``nn.Dropout(inplace=True)``), train/eval as ``nn.Dropout``.

Threads: a call of ours never runs inside one of torch's parallel regions: torch's intra-op
pool has finished its op when the autograd function is entered, and the two pools take turns
(measured in reports/training/summary.md: the CPU kernel's time beside torch's threads).
Calls from several Python threads at once are serialized by the CPU kernels' own gate
(kernels/threads.py: one call at a time uses Numba's pool, the others run serially).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import nn

import kernels
from kernels.generator import StreamGenerator, as_generator

MASK_MODES = ("bits", "regenerate")


def numpy_view(t: torch.Tensor) -> np.ndarray:
    """A NumPy array on a CPU tensor's memory (bfloat16 as ml_dtypes.bfloat16): no copy."""
    t = t.detach()
    if t.dtype == torch.bfloat16:
        import ml_dtypes

        return t.view(torch.int16).numpy().view(ml_dtypes.bfloat16)
    return t.numpy()


def _resolve_noise_shape(shape: tuple, noise_shape: tuple | None) -> tuple | None:
    if noise_shape is None:
        return None
    if len(noise_shape) != len(shape):
        raise ValueError(f"noise_shape {tuple(noise_shape)} must have the rank of the input {tuple(shape)}")
    return tuple(int(s) if k is None else int(k) for s, k in zip(shape, noise_shape))


def mask_numel(shape: tuple, noise_shape: tuple | None = None) -> int:
    """Stream positions one call consumes: the mask's elements (the noise shape's, if given)."""
    ns = _resolve_noise_shape(tuple(shape), noise_shape)
    return math.prod(shape if ns is None else ns)


def _cpu_backend(name: str | None):
    return kernels.get_backend(name or "cpu")


def _cuda_args(t: torch.Tensor) -> tuple[torch.Tensor, Any]:
    """(the tensor the interface can name, the dtype our kernels must see)."""
    if t.dtype == torch.bfloat16:
        import ml_dtypes

        return t.view(torch.int16), ml_dtypes.bfloat16
    return t, None


class _StreamGuard:
    """Orders our launches (numba's default stream) after torch's work on another stream."""

    def __init__(self, device: torch.device):
        self.other = torch.cuda.current_stream(device) != torch.cuda.default_stream(device)

    def __enter__(self) -> None:
        if self.other:
            torch.cuda.current_stream().synchronize()

    def __exit__(self, *exc: object) -> None:
        if self.other:
            from numba import cuda

            cuda.synchronize()


class KernelDropoutFunction(torch.autograd.Function):
    """``y = x * m / (1 - p)`` with ``m`` our Philox mask at ``(seed, offset)``; backward
    ``g * m / (1 - p)`` from the stored bits or the regenerated mask."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, p: float, seed: int, offset: int, noise_shape: tuple | None,
                mask_mode: str, inplace: bool, backend: str | None) -> torch.Tensor:
        store = mask_mode == "bits"
        fmt = "bits" if store else None
        if x.is_cuda:
            from kernels import bridge_arrays

            if inplace and not x.is_contiguous():
                raise ValueError("inplace dropout on a CUDA tensor needs a contiguous tensor")
            xc = x if x.is_contiguous() else x.contiguous()
            y = xc if inplace else torch.empty_like(xc)
            xa, dt = _cuda_args(xc)
            ya = xa if inplace else _cuda_args(y)[0]
            with _StreamGuard(x.device):
                mask = bridge_arrays.cuda_forward(xa, p, seed=seed, offset=offset, out=ya, mask_format=fmt,
                                                  noise_shape=noise_shape, dtype=dt)
        else:
            y = x if inplace else torch.empty_like(x)
            xn = numpy_view(x)
            _, mask = _cpu_backend(backend).dropout_forward(xn, p, seed=seed, offset=offset, mask_format=fmt,
                                                           out=xn if inplace else numpy_view(y),
                                                           noise_shape=noise_shape)
        ctx.cfg = (p, seed, offset, noise_shape, backend)
        ctx.mask = mask  # the packed bits (NumPy or a device array), or None: regenerate
        if inplace:
            ctx.mark_dirty(x)
        return y

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, grad: torch.Tensor) -> tuple:
        p, seed, offset, noise_shape, backend = ctx.cfg
        mask, ctx.mask = ctx.mask, None
        g = grad.contiguous()
        dx = torch.empty_like(g)
        if g.is_cuda:
            from kernels import bridge_arrays

            ga, dt = _cuda_args(g)
            with _StreamGuard(g.device):
                bridge_arrays.cuda_backward(ga, p, out=_cuda_args(dx)[0], mask=mask, seed=seed, offset=offset,
                                            noise_shape=noise_shape, dtype=dt)
        else:
            _cpu_backend(backend).dropout_backward(numpy_view(g), p, mask=mask, seed=None if mask is not None else seed,
                                                   offset=offset, out=numpy_view(dx), noise_shape=noise_shape)
        return dx, None, None, None, None, None, None, None


def dropout(x: torch.Tensor, p: float = 0.5, training: bool = True, inplace: bool = False, *,
            seed: int | None = None, offset: int | None = None, generator: StreamGenerator | None = None,
            noise_shape: tuple | None = None, mask: str = "bits", backend: str | None = None) -> torch.Tensor:
    """``torch.nn.functional.dropout`` on our kernels. The stream range is ``(seed, offset)``
    when ``seed`` is given (``offset`` default 0), else ``generator.take(n)``; one of the two
    is needed in training (no hidden global state: see kernels/generator.py)."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    if mask not in MASK_MODES:
        raise ValueError(f"mask must be one of {MASK_MODES}, got {mask!r}")
    if not training:
        return x
    ns = _resolve_noise_shape(tuple(x.shape), noise_shape)
    if seed is None:
        if generator is None:
            raise ValueError("give seed= (and offset=) or generator= (a kernels.generator.StreamGenerator)")
        seed, offset = generator.take(mask_numel(tuple(x.shape), ns))
    out: torch.Tensor = KernelDropoutFunction.apply(x, float(p), int(seed), int(offset or 0), ns, mask, inplace,
                                                    backend)
    return out


class KernelDropout(nn.Module):
    """A drop-in ``nn.Dropout(p, inplace)`` on our kernels.

    ``generator``: a :class:`~kernels.generator.StreamGenerator` to share with other layers,
    an int seed (a generator of this module's own), or None (an OS-entropy seed, recorded in
    the state dict). ``noise_shape``: one mask broadcast over the axes given as 1 (None keeps
    an axis). ``mask``: "bits" (store the packed mask) or "regenerate" (store nothing).
    ``backend``: the CPU backend for CPU tensors ("cpu" or "reference"); CUDA tensors always
    run kernels.cuda.
    """

    def __init__(self, p: float = 0.5, inplace: bool = False, *, generator: StreamGenerator | int | None = None,
                 noise_shape: tuple | None = None, mask: str = "bits", backend: str | None = None):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
        if mask not in MASK_MODES:
            raise ValueError(f"mask must be one of {MASK_MODES}, got {mask!r}")
        self.p, self.inplace, self.noise_shape, self.mask, self.backend = p, inplace, noise_shape, mask, backend
        self.generator = as_generator(generator)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return dropout(x, self.p, self.training, self.inplace, generator=self.generator,
                       noise_shape=self.noise_shape, mask=self.mask, backend=self.backend)

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace={self.inplace}, mask={self.mask!r}, seed={self.generator.seed}"

    def get_extra_state(self) -> dict:
        return {"generator": self.generator.state_dict()}

    def set_extra_state(self, state: dict) -> None:
        self.generator.load_state_dict(state["generator"])
