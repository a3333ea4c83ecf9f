"""NumPy reference of inverted dropout: the oracle every kernel is held to, bit for bit.

Clear rather than fast: it computes the whole mask with vectorized Philox, then
``y = (x * m) * scale`` in the input's dtype. The contract is docs/RNG_STREAM.md.
"""

from __future__ import annotations

import math

import numpy as np

from . import masks
from . import validate as v
from .half import compute_dtype
from .masks import pack_bits, unpack_bits
from .stream import block_span, counter, keep_threshold, philox4x32_10, scale_for, split_seed

__all__ = ["dropout_backward", "dropout_forward", "keep_mask", "pack_bits", "stream_words", "unpack_bits"]

NAME = "reference"
CHUNK_BLOCKS = 1 << 20  # bounds the temporaries of the vectorized Philox


def stream_words(numel: int, seed: int, offset: int = 0) -> np.ndarray:
    """The ``uint32`` words of stream positions ``offset .. offset + numel - 1``."""
    words = np.empty(numel, dtype=np.uint32)
    if numel == 0:
        return words
    k0, k1 = split_seed(seed)
    first, n, s = block_span(np.uint64(offset), numel)
    first_block, n_blocks, skip = int(first), int(n), int(s)  # skip: positions of the first block before `offset`
    for start in range(0, n_blocks, CHUNK_BLOCKS):
        count = min(CHUNK_BLOCKS, n_blocks - start)
        b = np.arange(count, dtype=np.uint64) + np.uint64(first_block + start)
        zero = np.zeros_like(b)
        block_words = np.stack(philox4x32_10(*counter(b), zero, zero, k0, k1), axis=1)
        flat = block_words.astype(np.uint32).ravel()  # stream order: 4 words per block
        lo = 4 * start - skip  # element index of flat[0]
        a, z = max(lo, 0), min(lo + flat.size, numel)
        words[a:z] = flat[a - lo : z - lo]
    return words


def keep_mask(shape, p: float, seed: int, offset: int = 0) -> np.ndarray:
    """Bool keep-mask of ``shape``: element ``i`` (C order) is kept when its word < threshold."""
    return (stream_words(math.prod(shape), seed, offset) < keep_threshold(p)).reshape(shape)


def _apply(x: np.ndarray, kept: np.ndarray, p: float, out) -> np.ndarray:
    """``(x * m) * scale`` in ``x``'s compute dtype (float32 for the 16-bit formats), rounded
    once to ``x``'s dtype; ``kept`` broadcasts against ``x`` (a noise_shape mask)."""
    y = np.empty_like(x) if out is None else out  # order 'K': the input's memory layout
    work = compute_dtype(x.dtype)
    with np.errstate(invalid="ignore", over="ignore"):  # inf * 0 -> NaN and max * scale -> inf are IEEE's answers
        t = x.astype(work) * kept.astype(work)  # m is exactly 0 or 1: x*m is x or a signed zero
        t *= scale_for(p, work)
        y[...] = t.astype(x.dtype)  # the one rounding of a 16-bit format; exact otherwise
    return y


def dropout_forward(x, p, *, seed, offset=0, training=True, mask_format="bool", out=None, noise_shape=None):
    """Inverted dropout: ``y = (x * m) * (1 / (1 - p))`` with ``m`` drawn from the stream.

    Returns ``(y, mask)``: ``y`` a new array of ``x``'s shape, dtype and memory layout (or
    ``out``, which may be ``x`` itself), ``mask`` a bool array of the mask's shape
    (``"bool"``), the little-endian packed bits of the flattened mask (``"bits"``), or
    ``None``. The mask's shape is ``x.shape``, or ``noise_shape``: one decision per mask
    element, broadcast over the axes where ``noise_shape`` is 1. With ``training=False`` it
    returns ``(copy of x, None)`` and draws no random words.
    """
    x, call, y_view = v.numpy_forward_args(x, p, seed, offset, training, mask_format, out, noise_shape)
    if not call.training:
        y = np.empty_like(x) if y_view is None else y_view
        y[...] = x
        return v.returned(y, out), None
    kept = keep_mask(call.mask_shape, call.p, call.seed, call.offset)
    return v.returned(_apply(x, kept, call.p, y_view), out), masks.stored(kept, call.mask_format)


def dropout_backward(grad_y, p, *, mask=None, seed=None, offset=0, out=None, noise_shape=None):
    """``grad_x = (grad_y * m) * (1 / (1 - p))`` with the forward call's mask.

    ``m`` comes from ``mask`` (either stored format) or, when ``mask`` is None, is
    regenerated from ``seed`` and ``offset``; ``noise_shape`` as in the forward call. Returns
    a new array (or ``out``, which may be ``grad_y`` itself).
    """
    g, call, mask, fmt, dx_view = v.numpy_backward_args(grad_y, p, mask, seed, offset, out, noise_shape)
    if fmt is not None:
        kept = masks.kept_of(mask, fmt, call.mask_shape)
    else:
        kept = keep_mask(call.mask_shape, call.p, call.seed, call.offset)
    return v.returned(_apply(g, kept, call.p, dx_view), out)
