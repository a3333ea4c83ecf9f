"""An example the suite rejects: dropout with an 8-bit keep threshold.

Some fused attention and transformer kernels compare one byte of the random word with a
quantized threshold: keep iff ``(u >> 24) < floor((1 - p) * 256)``. It is our stream and our
API otherwise, so it looks right, but the keep probability is ``floor((1 - p) 256) / 256``:
p = 0.1 keeps 230/256 = 0.8984 instead of 0.9, every p below 1/256 drops 1/256 of the
elements, and the scale 1/(1-p) no longer matches the keep rate, so E[y] != x.
``dropout-check quant8`` measures the bias (reports/conformance/quant8.md).
"""

from __future__ import annotations

import math

import numpy as np

from reference.dropout import pack_bits, stream_words, unpack_bits
from reference.stream import scale_for

NAME = "quant8"
DROPOUT_CAPABILITIES: dict[str, object] = {}  # the whole API
DROPOUT_CONTRACT = False    # not our keep decision: judged statistically


def _kept(shape, p, seed, offset):
    n = int(np.prod(shape, dtype=np.int64))
    t8 = math.floor((1.0 - float(p)) * 256)
    return ((stream_words(n, seed, offset) >> np.uint32(24)) < t8).reshape(shape)


def _apply(x, kept, p):
    with np.errstate(invalid="ignore", over="ignore"):
        return (x * kept.astype(x.dtype)) * scale_for(p, x.dtype)


def dropout_forward(x, p, *, seed, offset=0, training=True, mask_format="bool", out=None):
    x = np.asarray(x)
    if not 0 <= p <= 1:
        raise ValueError(f"p must be in [0, 1], got {p}")
    if not training:
        return x.copy(), None
    kept = _kept(x.shape, p, seed, offset)
    mask = {"bool": kept, "bits": pack_bits(kept) if mask_format == "bits" else None}.get(mask_format)
    return _apply(x, kept, p), mask


def dropout_backward(grad_y, p, *, mask=None, seed=None, offset=0, out=None):
    g = np.asarray(grad_y)
    if mask is None:
        kept = _kept(g.shape, p, seed, offset)
    else:
        kept = mask if mask.dtype == np.bool_ else unpack_bits(mask, g.shape)
    return _apply(g, kept, p)


def make():
    import sys

    from reference.conformance.protocol import from_api

    return from_api(sys.modules[__name__], "quant8", description="8-bit keep threshold "
                    "(reference/conformance/adapters/quant8.py): a documented example the suite rejects")
