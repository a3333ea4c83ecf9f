"""NumPy reference of inverted dropout: the oracle every kernel is held to, bit for bit.

Clear rather than fast: it computes the whole mask with vectorized Philox, then
``y = (x * m) * scale`` in the input's dtype. The contract is docs/RNG_STREAM.md.
"""

from __future__ import annotations

import numpy as np

from . import validate as v
from .stream import MASK32, SHIFT32, keep_threshold, philox4x32_10, scale_for, split_seed

NAME = "reference"
_CHUNK_BLOCKS = 1 << 20  # bounds the temporaries of the vectorized Philox


def stream_words(numel: int, seed: int, offset: int = 0) -> np.ndarray:
    """The ``uint32`` words of stream positions ``offset .. offset + numel - 1``."""
    words = np.empty(numel, dtype=np.uint32)
    if numel == 0:
        return words
    k0, k1 = split_seed(seed)
    first_block = offset // 4
    n_blocks = (offset + numel - 1) // 4 - first_block + 1
    skip = offset - 4 * first_block  # positions of the first block before `offset`
    for start in range(0, n_blocks, _CHUNK_BLOCKS):
        count = min(_CHUNK_BLOCKS, n_blocks - start)
        b = np.arange(count, dtype=np.uint64) + np.uint64(first_block + start)
        zero = np.zeros_like(b)
        block_words = np.stack(philox4x32_10(b & MASK32, b >> SHIFT32, zero, zero, k0, k1), axis=1)
        flat = block_words.astype(np.uint32).ravel()  # stream order: 4 words per block
        lo = 4 * start - skip  # element index of flat[0]
        a, z = max(lo, 0), min(lo + flat.size, numel)
        words[a:z] = flat[a - lo : z - lo]
    return words


def keep_mask(shape, p: float, seed: int, offset: int = 0) -> np.ndarray:
    """Bool keep-mask of ``shape``: element ``i`` (C order) is kept when its word < threshold."""
    numel = int(np.prod(shape, dtype=np.int64))
    return (stream_words(numel, seed, offset) < keep_threshold(p)).reshape(shape)


def pack_bits(kept: np.ndarray) -> np.ndarray:
    return np.packbits(kept.ravel(), bitorder="little")


def unpack_bits(bits: np.ndarray, shape) -> np.ndarray:
    numel = int(np.prod(shape, dtype=np.int64))
    return np.unpackbits(bits, count=numel, bitorder="little").view(np.bool_).reshape(shape)


def _apply(x: np.ndarray, kept: np.ndarray, p: float, out) -> np.ndarray:
    y = np.empty(x.shape, dtype=x.dtype) if out is None else out
    with np.errstate(invalid="ignore", over="ignore"):  # inf * 0 -> NaN and max * scale -> inf are IEEE's answers
        np.multiply(x, kept.astype(x.dtype), out=y)  # m is exactly 0 or 1: x*m is x or a signed zero
        np.multiply(y, scale_for(p, x.dtype), out=y)
    return y


def dropout_forward(x, p, *, seed, offset=0, training=True, mask_format="bool", out=None):
    """Inverted dropout: ``y = (x * m) * (1 / (1 - p))`` with ``m`` drawn from the stream.

    Returns ``(y, mask)``: ``y`` a new C-ordered array of ``x``'s shape and dtype (or ``out``),
    ``mask`` a bool array of ``x``'s shape (``"bool"``), the little-endian packed bits of the
    flattened mask (``"bits"``), or ``None``. With ``training=False`` it returns
    ``(copy of x, None)`` and draws no random words.
    """
    x, p, seed, offset, training, mask_format, y_view = v.numpy_forward_args(
        x, p, seed, offset, training, mask_format, out)
    if not training:
        y = np.empty(x.shape, dtype=x.dtype) if y_view is None else y_view
        y[...] = x
        return v.returned(y, out), None
    kept = keep_mask(x.shape, p, seed, offset)
    y = v.returned(_apply(x, kept, p, y_view), out)
    if mask_format == "bool":
        return y, kept
    if mask_format == "bits":
        return y, pack_bits(kept)
    return y, None


def dropout_backward(grad_y, p, *, mask=None, seed=None, offset=0, out=None):
    """``grad_x = (grad_y * m) * (1 / (1 - p))`` with the forward call's mask.

    ``m`` comes from ``mask`` (either stored format) or, when ``mask`` is None, is
    regenerated from ``seed`` and ``offset``. Returns a new array (or ``out``).
    """
    g, p, seed, offset, dx_view = v.numpy_backward_args(grad_y, p, mask, seed, offset, out)
    if mask is not None:
        mask, fmt = v.as_mask_array(mask, g.shape, g.size)
        kept = mask if fmt == "bool" else unpack_bits(mask, g.shape)
    else:
        kept = keep_mask(g.shape, p, seed, offset)
    return v.returned(_apply(g, kept, p, dx_view), out)
