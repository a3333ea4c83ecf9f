"""float16 and bfloat16: the 16-bit conversions against NumPy's and ml_dtypes' astype, and the
mean that dropout preserves once the one rounding is accounted for exactly."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest
from numba import cuda, njit  # cuda at module level: the simulator swaps kernels' globals

from reference.half import HALF_BF16, HALF_F16, compute_dtype
from reference.stream import keep_threshold, scale_for
from tests.inputs import SIMULATED

FORMATS = [(np.dtype(np.float16), HALF_F16), (np.dtype(ml_dtypes.bfloat16), HALF_BF16)]
IDS = ["float16", "bfloat16"]


def _float32_cases():
    """Random bit patterns, every 16-bit value widened, the ties between neighbours, and the
    edges: subnormals, overflow, NaN payloads, infinities, signed zeros."""
    rng = np.random.default_rng(0)
    random_bits = rng.integers(0, 2**32, 400_000, dtype=np.uint64).astype(np.uint32).view(np.float32)
    cases = [random_bits]
    for dtype, _ in FORMATS:
        every = np.arange(2**16, dtype=np.uint32).astype(np.uint16).view(dtype).astype(np.float32)
        fin = np.sort(every[np.isfinite(every)])
        mid = (fin[:-1].astype(np.float64) + fin[1:]) / 2  # exact ties (where float32 holds them)
        cases += [every, mid.astype(np.float32), np.nextafter(mid.astype(np.float32), np.float32(np.inf)),
                  np.nextafter(mid.astype(np.float32), np.float32(-np.inf))]
    edges = np.array([0.0, -0.0, np.inf, -np.inf, 65504, 65519.99, 65520, 65536, 3.4e38, -3.4e38,
                      2**-24, 2**-25, 2**-25 * 1.0000001, 2**-26, 2**-14, 2**-14 * (1 - 2**-11), 1e-45],
                     dtype=np.float32)
    nans = np.array([0x7FC00000, 0xFFC00000, 0x7F800001, 0x7FC12345, 0xFF812345, 0x7FFFFFFF],
                    dtype=np.uint32).view(np.float32)
    return np.concatenate(cases + [edges, -edges, nans])


def _cpu():
    from kernels import cpu

    return cpu


def _compiled(to_f32, from_f32):
    @njit
    def widen(h, out, code):
        for i in range(h.size):
            out[i] = to_f32(h[i], code)

    @njit
    def narrow(f, out, code):
        for i in range(f.size):
            out[i] = from_f32(f[i], code)

    return widen, narrow


def _signalling_nan(bits32):
    return (bits32 & 0x7F800000 == 0x7F800000) & (bits32 & 0x7FFFFF != 0) & (bits32 & 0x400000 == 0)


@pytest.mark.skipif(SIMULATED, reason="CPU codecs: the core lane runs these")
@pytest.mark.parametrize("which", ["integer", "kernel"])
@pytest.mark.parametrize("dtype,code", FORMATS, ids=IDS)
def test_cpu_codecs_match_astype(dtype, code, which):
    """``integer``: reference/half.py's codecs, exactly, signalling NaNs included. ``kernel``:
    what the CPU kernels use (F16C for float16 where the CPU has it), exact but for a
    signalling NaN, which F16C quiets (a kernel never converts one: see kernels/cpu.py)."""
    cpu = _cpu()
    pair = (cpu.soft_to_f32, cpu.soft_from_f32) if which == "integer" else (cpu.to_f32, cpu.from_f32)
    widen, narrow = _compiled(*pair)
    h = np.arange(2**16, dtype=np.uint32).astype(np.uint16)
    wide = np.empty(h.size, np.float32)
    widen(h, wide, code)
    expected = h.view(dtype).astype(np.float32)
    ok = wide.view(np.uint32) == expected.view(np.uint32)
    if which == "kernel":
        ok |= _signalling_nan(expected.view(np.uint32)) & np.isnan(wide)
    assert ok.all(), [hex(v) for v in h[~ok][:5]]  # all 65,536 patterns
    f = _float32_cases()
    got = np.empty(f.size, np.uint16)
    narrow(f, got, code)
    with np.errstate(invalid="ignore", over="ignore"):
        want = f.astype(dtype).view(np.uint16)
    ok = got == want
    if which == "kernel":
        ok |= _signalling_nan(f.view(np.uint32))
    bad = np.flatnonzero(~ok)
    assert bad.size == 0, [(hex(f.view(np.uint32)[i]), hex(got[i]), hex(want[i])) for i in bad[:5]]


# the simulator multiplies NumPy scalars, which warn where the codecs overflow on purpose
@pytest.mark.filterwarnings("ignore:(overflow|invalid value) encountered:RuntimeWarning")
@pytest.mark.skipif(not SIMULATED, reason="the CUDA codecs run in the simulator lane")
@pytest.mark.parametrize("dtype,code", FORMATS, ids=IDS)
def test_cuda_codecs_match_astype(dtype, code):
    from kernels import cuda as gpu

    @cuda.jit
    def roundtrip(f, wide, h, code):
        i = cuda.grid(1)
        if i < f.size:
            h[i] = gpu.from_f32(f[i], code)
            wide[i] = gpu.to_f32(h[i], code)

    f = np.ascontiguousarray(_float32_cases()[::997])  # the simulator runs a few thousand threads a second
    wide, h = np.empty(f.size, np.float32), np.empty(f.size, np.uint16)
    roundtrip[(f.size + 63) // 64, 64](f, wide, h, code)
    with np.errstate(invalid="ignore", over="ignore"):
        want = f.astype(dtype)
    np.testing.assert_array_equal(h, want.view(np.uint16))
    np.testing.assert_array_equal(wide.view(np.uint32), want.astype(np.float32).view(np.uint32))


@pytest.mark.parametrize("dtype", [np.float16, ml_dtypes.bfloat16], ids=IDS)
@pytest.mark.parametrize("value", [1.0, 0.1, 3.3])
def test_mean_is_preserved_up_to_the_one_rounding(backend, dtype, value):
    """E[y] = P(keep) * round16(x * scale32): the expectation is exact, not x. The sample mean
    of n outputs must lie within 6 standard errors of it, and the rounding bias is what the
    contract says it is."""
    p = 0.3
    n = 4096 if SIMULATED else 1 << 18
    x = np.full(n, value, dtype=dtype)
    y, m = backend.dropout_forward(x, p, seed=99)
    w = compute_dtype(dtype)
    kept_value = float((x[:1].astype(w) * scale_for(p, w)).astype(dtype)[0])
    q = int(keep_threshold(p)) / 2**32
    mean, expected = float(np.asarray(y, np.float64).mean()), q * kept_value
    se = kept_value * np.sqrt(q * (1 - q) / n)
    assert abs(mean - expected) < 6 * se, (mean, expected, se)
    np.testing.assert_array_equal(np.asarray(y, np.float64), np.where(m, kept_value, 0.0))
    # the bias against x is the rounding of x * scale alone
    assert abs(expected - float(x[0]) * q / (1 - p)) <= q * abs(kept_value) * 2.0 ** -(8 if dtype is np.float16 else 5)
