"""Array helpers shared by the deterministic checks (:mod:`.semantic`, :mod:`.contract`):
the standard test input and bit-for-bit comparison. Pure NumPy: imports nothing of the project."""

from __future__ import annotations

import numpy as np


def nonzero_normal(dtype, shape=(37, 41), seed=0) -> np.ndarray:
    """Standard normal values, none zero (so y == 0 means dropped), no overflow at any scale."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    x[x == 0] = 1.0
    return x.astype(dtype)


def bits_equal(a, b) -> bool:
    """Same shape, same dtype and the same bits (NaN equal to NaN wherever both are NaN)."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    if a.dtype.kind != "f" and a.dtype.name != "bfloat16":  # ml_dtypes' bfloat16 is of kind 'V'
        return bool(np.array_equal(a, b))
    nan = np.isnan(a)
    return bool(np.array_equal(nan, np.isnan(b))) and bool(
        np.array_equal(np.ascontiguousarray(a)[~nan].view(f"u{a.itemsize}"),
                       np.ascontiguousarray(b)[~nan].view(f"u{a.itemsize}")))
