"""PyTorch's CPU dropout: ``F.dropout``, ``nn.Dropout`` and ``torch.native_dropout`` (with
its bool mask and ``native_dropout_backward``). Seeded with ``torch.manual_seed(seed)``,
the only seed these functions take (a global generator).

dtypes: float32, float64, float16 and bfloat16 (``ml_dtypes.bfloat16`` <-> ``torch.bfloat16``
through ``uint16`` views, bit for bit). ``noise_shape``: ``F.dropout`` and ``nn.Dropout`` take
the channel form ``(N, C, 1, ..., 1)`` through ``F.dropout1d/2d/3d`` and ``nn.Dropout1d/2d/3d``
(3-, 4- and 5-D input; a 2-D input's channel form is elementwise); no other noise shape.
"""

from __future__ import annotations

import numpy as np

from reference import noise, vocab
from reference.conformance.protocol import Capabilities, Implementation, Unsupported


def _capabilities(**kw) -> Capabilities:
    """Every dtype; no offset (a global generator, seeded per call), so no regenerated mask."""
    return Capabilities(dtypes=vocab.DTYPES, offset=False, regenerate=False, **kw)


def _t(x):
    import torch

    a = np.array(x, order="C")  # a C copy; ascontiguousarray would make 0-d 1-d
    if a.dtype.name == "bfloat16":  # ml_dtypes -> torch through the bit patterns
        return torch.from_numpy(a.view(np.int16)).view(torch.bfloat16)
    return torch.from_numpy(a)


def _np(t):
    import torch

    t = t.detach().cpu()
    if t.dtype == torch.bfloat16:
        import ml_dtypes

        return t.view(torch.int16).numpy().view(ml_dtypes.bfloat16)
    return t.numpy()


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
