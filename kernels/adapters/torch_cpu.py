"""PyTorch's CPU dropout: ``F.dropout``, ``nn.Dropout`` and ``torch.native_dropout`` (with
its bool mask and ``native_dropout_backward``). Seeded with ``torch.manual_seed(seed)``,
the only seed these functions take (a global generator)."""

from __future__ import annotations

import numpy as np

from reference.conformance.impl import Capabilities, Implementation

_NO_OFFSET = dict(offset=False, regenerate=False)


def _t(x):
    import torch

    return torch.from_numpy(np.array(x, order="C"))  # a C copy; ascontiguousarray would make 0-d 1-d


def _np(t):
    return t.detach().cpu().numpy()


def make_functional() -> Implementation:
    import torch
    import torch.nn.functional as F

    def forward(x, p, *, seed, offset, training, mask_format):
        torch.manual_seed(seed)
        return _np(F.dropout(_t(x), p, training=training)), None

    caps = Capabilities(backward=False, mask_formats=(), **_NO_OFFSET)
    return Implementation("torch-dropout", forward, None, caps,
                          description=f"torch.nn.functional.dropout, CPU (torch {torch.__version__})")


def make_module() -> Implementation:
    import torch

    def forward(x, p, *, seed, offset, training, mask_format):
        layer = torch.nn.Dropout(p)  # refuses a bad p, as users meet it
        layer.train(training)
        torch.manual_seed(seed)
        return _np(layer(_t(x))), None

    caps = Capabilities(backward=False, mask_formats=(), **_NO_OFFSET)
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

    caps = Capabilities(mask_formats=("bool",), **_NO_OFFSET)
    return Implementation("torch-native-dropout", forward, backward, caps,
                          description=f"torch.native_dropout with its mask and native_dropout_backward, "
                                      f"CPU (torch {torch.__version__})")
