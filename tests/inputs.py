"""Input generator in the spirit of numbagg's: odd sizes, 0-d and empty, 2-D/3-D, and
always the awkward views (transposed, sliced, F-ordered) next to the plain array."""

from __future__ import annotations

import ml_dtypes
import numpy as np

from reference import vocab

# The CUDA simulator runs each GPU thread as a Python thread: keep its sizes small.
SIMULATED = vocab.cuda_simulated()
BIG = 257 if SIMULATED else 4097  # "nbig": several tiles, a partial last tile, a prime-ish odd size
SIZES_1D = (1, 3, 5, 8, 31, 127)
SHAPES_ND = ((2, 3), (7, 13), (3, 5, 7))
P_VALUES = (0.0, 1e-7, 0.1, 0.5, 0.9, 1 - 1e-7, 1.0)
DTYPES = (np.float32, np.float64, np.float16, ml_dtypes.bfloat16)


def array_cases(dtype, seed: int = 0):
    """(id, array) pairs; values are standard normal, never NaN (tests add specials)."""
    rng = np.random.default_rng(seed)

    def randn(*shape):
        return rng.standard_normal(shape).astype(dtype)

    yield "0d", randn()
    yield "empty", randn(0)
    yield "empty2d", randn(3, 0)
    for n in SIZES_1D:
        yield f"n{n}", randn(n)
    yield "nbig", randn(BIG)
    for shape in SHAPES_ND:
        a = randn(*shape)
        yield "x".join(map(str, shape)), a
        yield "x".join(map(str, shape)) + ".T", a.T
        yield "x".join(map(str, shape)) + "-F", np.asfortranarray(a)
    yield "nbig[::3]", randn(BIG)[::3]
    yield "n101[::-1]", randn(101)[::-1]
    yield "13x17[1:,::2]", randn(13, 17)[1:, ::2]
    yield "5x6x7.transpose(2,0,1)[:, 1:4]", randn(5, 6, 7).transpose(2, 0, 1)[:, 1:4]


CASE_IDS = [cid for cid, _ in array_cases(np.float32)]


def get_case(cid, dtype):
    return dict(array_cases(dtype))[cid]


def specials(dtype, n: int = 64, seed: int = 1):
    """Finite values mixed with NaN, +-inf and +-0: a dropped NaN/inf must come out NaN."""
    rng = np.random.default_rng(seed)
    a = rng.standard_normal(n).astype(dtype)
    a[::7] = np.nan
    a[1::7] = np.inf
    a[2::7] = -np.inf
    a[3::7] = 0.0
    a[4::7] = -0.0
    info = ml_dtypes.finfo(dtype)
    a[5::7] = info.max
    a[6::7] = dtype(float(info.tiny) / 4)  # subnormal: FTZ anywhere would show
    return a


def assert_same_bits(actual, expected):
    """Exact equality of every bit, the sign of zero included; NaN must meet NaN."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    assert actual.dtype == expected.dtype, (actual.dtype, expected.dtype)
    if actual.dtype == np.bool_ or actual.dtype == np.uint8:
        np.testing.assert_array_equal(actual, expected)
        return
    a_nan, e_nan = np.isnan(actual), np.isnan(expected)
    np.testing.assert_array_equal(a_nan, e_nan, err_msg="NaN positions differ")
    uint = {2: np.uint16, 4: np.uint32, 8: np.uint64}[actual.dtype.itemsize]
    a_bits = np.ascontiguousarray(actual).view(uint)[~a_nan]
    e_bits = np.ascontiguousarray(expected).view(uint)[~e_nan]
    bad = np.flatnonzero(a_bits != e_bits)
    assert bad.size == 0, (
        f"{bad.size} of {a_bits.size} elements differ; first at {bad[:5]}: "
        f"{actual[~a_nan][bad[:5]]} vs {expected[~e_nan][bad[:5]]}"
    )


POISON = {np.dtype(np.float32): np.float32(np.nan), np.dtype(np.float64): np.float64(np.nan)}


def poisoned_like(a):
    """An output buffer full of NaN: a kernel that skips an element leaves a NaN behind."""
    return np.full(a.shape, POISON[np.dtype(a.dtype)], dtype=a.dtype)
