"""PyTorch's CPU dropout: ``F.dropout``, ``nn.Dropout`` and ``torch.native_dropout`` (with
its bool mask and ``native_dropout_backward``). Seeded with ``torch.manual_seed(seed)``,
the only seed these functions take (a global generator).

dtypes: float32, float64, float16 and bfloat16 (``ml_dtypes.bfloat16`` <-> ``torch.bfloat16``
through ``uint16`` views, bit for bit). ``noise_shape``: ``F.dropout`` and ``nn.Dropout`` take
the channel form ``(N, C, 1, ..., 1)`` through ``F.dropout1d/2d/3d`` and ``nn.Dropout1d/2d/3d``
(3-, 4- and 5-D input; a 2-D input's channel form is elementwise); no other noise shape.

Layout: the input reaches PyTorch in its own memory layout (:func:`to_torch`), because PyTorch's
CPU mask follows the memory order, not the logical index. torch 2.13.0+cpu, float32, p = 0.5, the
same ``manual_seed`` (0x123456789abcdef0, the layout checks of reference/conformance/layout.py):
a transposed view (48, 64) drops another set than its C-order copy in 1514 of 3072 elements
(49.3 %), an F-ordered (10, 16, 24) array in 1872 of 3840 (48.8 %), channels-last (4, 8, 10, 12)
in 1944 of 3840 (50.6 %), each time exactly the C-order mask laid out in memory order; the same
for ``nn.Dropout`` and ``native_dropout``. A strided slice draws as its dense copy would; a
reversed axis (negative stride), which ``torch.from_numpy`` refuses, reaches torch copied with
that axis forward (``x[:, ::-1]`` of a C array: in C order, so the C-order mask).
"""

from __future__ import annotations

import numpy as np

from reference import noise, vocab
from reference.conformance.protocol import Capabilities, Implementation, Unsupported, from_stateful


def _capabilities(**kw) -> Capabilities:
    """Every dtype; no offset (a global generator, seeded per call), so no regenerated mask."""
    return Capabilities(dtypes=vocab.DTYPES, offset=False, regenerate=False, **kw)


def to_torch(x):
    """A CPU tensor of ``x`` in ``x``'s memory layout: PyTorch's mask follows the layout (the
    module's docstring), so a transposed, F-ordered or channels-last input must reach it as such.
    A copy in order "K" keeps the order of the strides (``torch.from_numpy`` takes only
    non-negative ones: a reversed axis becomes a forward one; a strided view becomes dense, which
    draws the same mask as the view) and never lets an output alias the caller's array
    (``F.dropout`` returns its input itself at p = 0 and in evaluation mode). 0-d stays 0-d."""
    import torch

    a = np.array(x, order="K")
    if a.dtype.name == "bfloat16":  # ml_dtypes -> torch through the bit patterns (any strides)
        return torch.from_numpy(a.view(np.int16)).view(torch.bfloat16)
    return torch.from_numpy(a)


def to_numpy(t):
    """The NumPy array of a tensor (its strides kept; bfloat16 as ``ml_dtypes.bfloat16``)."""
    import torch

    t = t.detach().cpu()
    if t.dtype == torch.bfloat16:
        import ml_dtypes

        return t.view(torch.int16).numpy().view(ml_dtypes.bfloat16)
    return t.numpy()


_t, _np = to_torch, to_numpy  # the names other modules import


def _channel_fn(x_shape, noise_shape, prefix):
    """The PyTorch function (or module class) name for a channel noise_shape."""
    if noise_shape is None or tuple(noise_shape) == tuple(x_shape):
        return prefix
    if len(x_shape) not in (3, 4, 5) or tuple(noise_shape) != noise.channel(x_shape):
        raise Unsupported(f"PyTorch has channel dropout only: noise_shape {tuple(noise_shape)} of {tuple(x_shape)}")
    return f"{prefix}{len(x_shape) - 2}d"


def make_functional() -> Implementation:
    import torch
    import torch.nn.functional as F

    def forward(x, p, *, seed, offset, training, mask_format, noise_shape=None):
        fn = getattr(F, _channel_fn(x.shape, noise_shape, "dropout"))
        torch.manual_seed(seed)
        return _np(fn(_t(x), p, training=training)), None

    caps = _capabilities(backward=False, mask_formats=(), noise_shape="channel")
    return Implementation("torch-dropout", forward, None, caps,
                          description=f"torch.nn.functional.dropout, CPU (torch {torch.__version__})")


def make_module() -> Implementation:
    import torch

    def forward(x, p, *, seed, offset, training, mask_format, noise_shape=None):
        cls = getattr(torch.nn, _channel_fn(x.shape, noise_shape, "Dropout"))
        layer = cls(p)  # refuses a bad p, as users meet it
        layer.train(training)
        torch.manual_seed(seed)
        return _np(layer(_t(x))), None

    caps = _capabilities(backward=False, mask_formats=(), noise_shape="channel")
    return Implementation("torch-nn-dropout", forward, None, caps,
                          description=f"torch.nn.Dropout module, CPU (torch {torch.__version__})")


def make_native() -> Implementation:
    import torch

    def forward(x, p, *, seed, offset, training, mask_format):
        torch.manual_seed(seed)
        y, mask = torch.native_dropout(_t(x), p, training)
        return _np(y), (_np(mask) if mask_format == "bool" else None)

    def backward(g, p, *, mask, seed, offset):
        scale = 1.0 / (1.0 - p) if p < 1.0 else 0.0
        return _np(torch.ops.aten.native_dropout_backward(_t(g), _t(mask), scale))

    caps = _capabilities(mask_formats=("bool",))
    return Implementation("torch-native-dropout", forward, backward, caps,
                          description=f"torch.native_dropout with its mask and native_dropout_backward, "
                                      f"CPU (torch {torch.__version__})")


# --- stateful: the global generator as users call it (seeded once, then many calls) ----------


def _set_threads(n):
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(int(n))
    return old


def make_stateful() -> Implementation:
    """``F.dropout(x, p, training)`` drawing from PyTorch's global CPU generator, as a training
    loop calls it: ``torch.manual_seed`` once, then call after call (checked in stateful mode)."""
    import torch
    import torch.nn.functional as F

    def f(x, p, training=True):
        return to_numpy(F.dropout(to_torch(x), p, training=training))

    return from_stateful(f, "torch-dropout-stateful", reseed=torch.manual_seed, set_threads=_set_threads,
                         dtypes=vocab.DTYPES,
                         description=f"torch.nn.functional.dropout on PyTorch's global CPU generator, called as a "
                                     f"training loop calls it (torch {torch.__version__})")


def make_native_stateful() -> Implementation:
    """``torch.native_dropout(x, p, train)`` on the global generator, call after call."""
    import torch

    def f(x, p, training=True):
        return to_numpy(torch.native_dropout(to_torch(x), p, training)[0])

    return from_stateful(f, "torch-native-dropout-stateful", reseed=torch.manual_seed, set_threads=_set_threads,
                         dtypes=vocab.DTYPES,
                         description=f"torch.native_dropout on PyTorch's global CPU generator, call after call "
                                     f"(torch {torch.__version__})")
