"""float16 and bfloat16 as 16-bit patterns: exact widening to float32 and one rounding back.

The contract (docs/RNG_STREAM.md) computes a 16-bit dropout in float32 and rounds once, to
nearest with ties to even, exactly as ``np.float32(v).astype(dtype)`` does for NumPy's float16
and ``ml_dtypes.bfloat16``; the NumPy reference does just that. Numba's CPU target has no
16-bit float type, so the kernels work on the ``uint16`` patterns with the conversions below,
written once here and compiled for the CPU (``numba.njit``) and the GPU (``numba.cuda.jit``).
:func:`make_codecs` takes the two bit casts between ``uint32`` and ``float32``, which every
target spells differently.

NaN: float16 keeps the sign and the top 10 payload bits (never 0, as NumPy does); bfloat16
gives the canonical quiet NaN with the sign (as ml_dtypes does). Overflow gives infinity.
"""

from __future__ import annotations

import numpy as np

try:
    import ml_dtypes

    BFLOAT16 = np.dtype(ml_dtypes.bfloat16)
except ImportError:  # pragma: no cover - ml_dtypes is a dependency
    BFLOAT16 = None

FLOAT16 = np.dtype(np.float16)
#: The 16-bit formats by code: 0 is "not a 16-bit format" (float32, float64).
HALF_NONE, HALF_F16, HALF_BF16 = 0, 1, 2


def half_code(dtype) -> int:
    dtype = np.dtype(dtype)
    if dtype == FLOAT16:
        return HALF_F16
    if BFLOAT16 is not None and dtype == BFLOAT16:
        return HALF_BF16
    return HALF_NONE


def compute_dtype(dtype) -> np.dtype:
    """The dtype the arithmetic runs in: float32 for the 16-bit formats, else the dtype itself."""
    return np.dtype(np.float32) if half_code(dtype) else np.dtype(dtype)


def make_codecs(as_float32, as_bits32):
    """``(to_float32, from_float32)`` for a 16-bit format code, built on the bit casts
    ``as_float32(uint32) -> float32`` and ``as_bits32(float32) -> uint32``.

    ``to_float32(h, code)`` widens the pattern ``h`` exactly; ``from_float32(f, code)``
    returns the ``uint16`` pattern of ``f`` rounded once. Integer work is done in int64 so
    that no mixed signed/unsigned expression promotes to float.
    """

    def to_float32(h, code):
        h = np.int64(h)
        if code == HALF_BF16:
            return as_float32(np.uint32(h << 16))
        sign = (h & 0x8000) << 16
        e = (h >> 10) & 0x1F
        m = h & 0x3FF
        if e == 0x1F:  # infinity or NaN: the payload moves up 13 bits
            return as_float32(np.uint32(sign | 0x7F800000 | (m << 13)))
        if e == 0:  # zero or subnormal: m * 2^-24, exact in float32
            v = np.float32(m) * np.float32(5.9604644775390625e-08)
            return -v if sign else v
        return as_float32(np.uint32(sign | ((e + 112) << 23) | (m << 13)))

    def from_float32(f, code):
        w = np.int64(as_bits32(f))
        sign = (w >> 16) & 0x8000
        a = w & 0x7FFFFFFF
        if code == HALF_BF16:
            if a > 0x7F800000:
                return np.uint16(sign | 0x7FC0)
            return np.uint16((w + 0x7FFF + ((w >> 16) & 1)) >> 16)
        if a > 0x7F800000:  # NaN
            payload = (a & 0x7FFFFF) >> 13
            return np.uint16(sign | 0x7C00 | (payload if payload else 1))
        if a >= 0x477FF000:  # 65520 and up round to infinity
            return np.uint16(sign | 0x7C00)
        if a >= 0x38800000:  # normal: rebias the exponent, round the mantissa at bit 13
            r = a - 0x38000000
            return np.uint16(sign | ((r + 0xFFF + ((r >> 13) & 1)) >> 13))
        if a <= 0x33000000:  # at most 2^-25 (a tie with 0, which is even)
            return np.uint16(sign)
        shift = 126 - (a >> 23)  # subnormal: value * 2^24 rounded to an integer, 14..24 bits down
        mant = (a & 0x7FFFFF) | 0x800000
        q = mant >> shift
        rem = mant & ((np.int64(1) << shift) - 1)
        half = np.int64(1) << (shift - 1)
        if rem > half or (rem == half and (q & 1) == 1):
            q += 1
        return np.uint16(sign | q)

    return to_float32, from_float32
