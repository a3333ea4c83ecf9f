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

from .vocab import is_bfloat16

FLOAT16 = np.dtype(np.float16)
#: The 16-bit formats by code: 0 is "not a 16-bit format" (float32, float64).
HALF_NONE, HALF_F16, HALF_BF16 = 0, 1, 2


_CODES: dict = {}  # dtype -> code, filled as dtypes are seen (bfloat16 only once ml_dtypes is)


def half_code(dtype) -> int:
    code = _CODES.get(dtype) if isinstance(dtype, np.dtype) else None
    if code is not None:
        return code
    dtype = np.dtype(dtype)
    code = HALF_F16 if dtype == FLOAT16 else HALF_BF16 if is_bfloat16(dtype) else HALF_NONE
    _CODES[dtype] = code
    return code


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

    # float16 in both directions without branches, so that LLVM vectorizes the loops that call
    # them (after M. Maratyszcza's FP16 library): float arithmetic does the rounding, which
    # IEEE defines as to nearest, ties to even.
    def to_float32(h, code):
        h = np.int64(h)
        if code == HALF_BF16:
            return as_float32(np.uint32(h << 16))
        two_w = (h << 17) & 0xFFFFFFFF  # the 15 bits below the sign, at the top of a word
        sign = (h & 0x8000) << 16
        # normal (and inf/NaN): rebias the exponent by multiplying by 2^-112
        normal = as_float32(np.uint32((two_w >> 4) + 0x70000000)) * np.float32(2.0 ** -112)
        # zero and subnormal: the mantissa as the low bits of 0.5's significand, minus 0.5
        subnormal = as_float32(np.uint32((two_w >> 17) | 0x3F000000)) - np.float32(0.5)
        bits = np.int64(as_bits32(subnormal if two_w < 0x08000000 else normal))
        nan = ((h & 0x7C00) == 0x7C00) & ((h & 0x3FF) != 0)  # keep the payload as it is, unquieted
        return as_float32(np.uint32(sign | (0x7F800000 | ((h & 0x3FF) << 13) if nan else bits)))

    def from_float32(f, code):
        w = np.int64(as_bits32(f))
        sign = (w >> 16) & 0x8000
        a = w & 0x7FFFFFFF
        if code == HALF_BF16:
            rounded = (w + 0x7FFF + ((w >> 16) & 1)) >> 16
            return np.uint16(sign | 0x7FC0 if a > 0x7F800000 else rounded)
        # |f| scaled up then down lands on float16's grid, rounded once by the float adds below
        base = (as_float32(np.uint32(a)) * np.float32(2.0 ** 112)) * np.float32(2.0 ** -110)
        bias = (2 * a) & 0xFF000000
        bias = bias if bias > 0x71000000 else np.int64(0x71000000)  # max(), typed on NumPy ints
        base = as_float32(np.uint32((bias >> 1) + 0x07800000)) + base
        bits = np.int64(as_bits32(base))
        finite = ((bits >> 13) & 0x7C00) + (bits & 0x0FFF)
        payload = (a & 0x7FFFFF) >> 13
        nan = 0x7C00 | (payload if payload > 1 else 1)  # NaN: the top payload bits, never 0 (as NumPy)
        return np.uint16(sign | (nan if a > 0x7F800000 else finite))

    return to_float32, from_float32


def make_dropped(to_float32, from_float32):
    """The one output element of every kernel, built on a target's codecs (:func:`make_codecs`):
    ``dropped(xv, keep, one, zero, scale, half) = (x * m) * scale`` with ``m`` the kernel's
    ``one`` or ``zero`` (of the compute dtype), through float32 for a 16-bit pattern ``xv``.

    So a kept value is scaled and rounded once, and a dropped one is ``x * 0``: a signed zero
    for a finite ``x``, NaN for NaN and inf (IEEE's answer, the contract's too).
    """

    def dropped(xv, keep, one, zero, scale, half):
        if half == HALF_NONE:
            return (xv * (one if keep else zero)) * scale
        return from_float32((to_float32(xv, half) * (one if keep else zero)) * scale, half)

    return dropped
