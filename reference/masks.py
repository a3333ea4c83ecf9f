"""The stored mask formats (reference/vocab.py names them), converted in one place.

``"bool"``: one bool per mask element, of the mask's shape. ``"bits"``: one bit per mask
element, ``np.packbits(mask.ravel(), bitorder="little")``. ``None``: no mask kept. The kernels
pick their specialization by :data:`MODES`.
"""

from __future__ import annotations

import math

import numpy as np

#: The kernels' code of each ``mask_format``.
MODE_NONE, MODE_BOOL, MODE_BITS = 0, 1, 2
MODES = {None: MODE_NONE, "bool": MODE_BOOL, "bits": MODE_BITS}


def n_mask_bytes(numel: int) -> int:
    """Length of a ``"bits"`` mask: one bit per element, little bit order."""
    return (numel + 7) // 8


def pack_bits(kept: np.ndarray) -> np.ndarray:
    return np.packbits(kept.ravel(), bitorder="little")


def unpack_bits(bits: np.ndarray, shape) -> np.ndarray:
    numel = math.prod(shape)
    return np.unpackbits(bits, count=numel, bitorder="little").view(np.bool_).reshape(shape)


def stored(kept: np.ndarray, mask_format):
    """The bool keep mask ``kept`` in ``mask_format`` (None: no mask)."""
    if mask_format == "bool":
        return kept
    if mask_format == "bits":
        return pack_bits(kept)
    return None


def kept_of(mask: np.ndarray, fmt: str, shape) -> np.ndarray:
    """The bool keep mask of ``shape`` held by a stored ``mask`` of format ``fmt``."""
    return mask if fmt == "bool" else unpack_bits(mask, shape)


def new_mask(mask_format, shape, empty=np.empty):
    """``(mask_bool, mask_bits)``: a new buffer for the format the kernel writes (1-D, made by
    ``empty(size, dtype)``) and None for the other; both None for ``mask_format=None``."""
    if mask_format == "bool":
        return empty(math.prod(shape), np.bool_), None
    if mask_format == "bits":
        return None, empty(n_mask_bytes(math.prod(shape)), np.uint8)
    return None, None
