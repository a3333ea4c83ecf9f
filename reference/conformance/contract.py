"""Contract checks (level 'contract'): the implementation claims our stream
(docs/RNG_STREAM.md), so it must equal the NumPy reference bit for bit: outputs, stored
masks, backward, special values, offsets and seeds that use all 64 bits."""

from __future__ import annotations

import numpy as np

import reference.dropout as ref
from reference import vocab

from .arrays import bits_equal, nonzero_normal
from .protocol import Unsupported
from .semantic import NOISE_SHAPES, NOISE_X_SHAPE, supported_noise_shapes

SEED = 0x1234_5678_9ABC_DEF0
P_VALUES = (0.0, 1e-7, 0.1, 0.5, 0.9, 1 - 1e-7, 1.0)


def _cases(dt):
    yield "4097", nonzero_normal(dt, (4097,))
    yield "7x13", nonzero_normal(dt, (7, 13))
    yield "(13x7).T", nonzero_normal(dt, (13, 7)).T
    yield "3x5x7 F-order", np.asfortranarray(nonzero_normal(dt, (3, 5, 7)))
    yield "0-d", nonzero_normal(dt, ())


def _diff(what, got, want):
    got = np.asarray(got)
    if got.shape != want.shape or got.dtype != want.dtype:
        return f"{what}: {got.dtype}{got.shape}, want {want.dtype}{want.shape}"
    return f"{what}: {int(np.count_nonzero(got != want))} of {want.size} elements differ"


def forward(impl, strict=True):
    offsets = (0, 3) if impl.capabilities.offset else (0,)
    for dt in impl.capabilities.base_dtypes:
        for cid, x in _cases(dt):
            for p in P_VALUES:
                for off in offsets:
                    y, _ = impl.forward(x, p, seed=SEED, offset=off)
                    want, _ = ref.dropout_forward(x, p, seed=SEED, offset=off, mask_format=None)
                    if not bits_equal(y, want):
                        return False, _diff(f"{dt} {cid} p={p} offset={off}", y, want)
    return True, "outputs equal the reference bit for bit"


def masks(impl, strict=True):
    if not impl.capabilities.mask_formats:
        raise Unsupported(f"{impl.name} returns no mask")
    for fmt in impl.capabilities.mask_formats:
        for dt in impl.capabilities.base_dtypes:
            for cid, x in _cases(dt):
                _, m = impl.forward(x, 0.3, seed=SEED, mask_format=fmt)
                _, want = ref.dropout_forward(x, 0.3, seed=SEED, mask_format=fmt)
                if not bits_equal(m, want):
                    return False, _diff(f"{fmt} mask {dt} {cid}", m, want)
    return True, "stored masks equal the reference in " + ", ".join(impl.capabilities.mask_formats)


def backward(impl, strict=True):
    impl.require("backward")
    for dt in impl.capabilities.base_dtypes:
        x, g = nonzero_normal(dt, (4097,)), nonzero_normal(dt, (4097,), seed=1)
        want = ref.dropout_backward(g, 0.3, seed=SEED, offset=0)
        for fmt in impl.capabilities.mask_formats:
            _, m = impl.forward(x, 0.3, seed=SEED, mask_format=fmt)
            gx = impl.backward(g, 0.3, mask=m)
            if not bits_equal(gx, want):
                return False, _diff(f"backward from {fmt} {dt}", gx, want)
        if impl.capabilities.regenerate:
            gx = impl.backward(g, 0.3, seed=SEED)
            if not bits_equal(gx, want):
                return False, _diff(f"backward regenerated {dt}", gx, want)
    return True, "backward equals the reference"


def special_values(impl, strict=True):
    for dt in impl.capabilities.base_dtypes:
        x = nonzero_normal(dt, (64,))
        x[::7], x[1::7], x[2::7], x[3::7], x[4::7] = np.nan, np.inf, -np.inf, 0.0, -0.0
        x[5::7], x[6::7] = np.finfo(dt).max, np.finfo(dt).tiny / 4
        for p in (0.0, 0.5, 1.0):
            with np.errstate(invalid="ignore", over="ignore"):
                y, _ = impl.forward(x, p, seed=SEED)
                want, _ = ref.dropout_forward(x, p, seed=SEED, mask_format=None)
            if not bits_equal(y, want):
                return False, _diff(f"{dt} p={p}", y, want)
    return True, "NaN, inf, signed zeros, max and subnormals as the reference"


def seeds_and_offsets(impl, strict=True):
    pairs = [(2**64 - 1, 0), (2**32, 0), (2**63 + 5, 0)]
    if impl.capabilities.offset:
        pairs += [(2**64 - 1, 2**64 - 127), (2**32, 2**34 + 1), (1, 2**63 - 3), (7, 2**32 - 2)]
    dt = impl.capabilities.base_dtypes[0]
    x = nonzero_normal(dt, (127,))
    for seed, off in pairs:
        y, _ = impl.forward(x, 0.5, seed=seed, offset=off)
        want, _ = ref.dropout_forward(x, 0.5, seed=seed, offset=off, mask_format=None)
        if not bits_equal(y, want):
            return False, _diff(f"seed={seed:#x} offset={off:#x}", y, want)
    return True, "all 64 bits of the seed" + (" and the offset" if impl.capabilities.offset else "")


# --- structured masks -------------------------------------------------------------------------

NOISE_CASES = (  # (x shape, noise shapes): a 4-D input, a sequence, a view, an odd size for the bits
    (NOISE_X_SHAPE, NOISE_SHAPES),
    ((5, 7, 9), ((5, 1, 9), (5, 7, 1), (5, 1, 1), (1, 7, 9))),
    ((3, 4, 11, 2), ((3, 4, 1, 1), (1, 4, 11, 1), (3, 1, 11, 2))),
)


def noise_shape(impl, strict=True):
    """With ``noise_shape``, outputs, stored masks (of the noise shape) and backward equal the
    reference bit for bit: the mask is drawn in its own C order from ``offset``."""
    impl.require("noise_shape")
    offsets = (0, 3) if impl.capabilities.offset else (0,)
    fmts = impl.capabilities.mask_formats
    n = 0
    for dt in impl.capabilities.base_dtypes:
        for shape, candidates in NOISE_CASES:
            try:
                nss = supported_noise_shapes(impl, candidates, shape)
            except Unsupported:
                continue
            x, g = nonzero_normal(dt, shape), nonzero_normal(dt, shape, seed=1)
            views = [("", x)] + ([("F-order ", np.asfortranarray(x))] if len(shape) == 4 else [])
            ps: tuple[float, ...] = (0.0, 0.1, 0.5, 1.0)
            if impl.simulated:  # the CUDA simulator: ~0.1 s a call; the two p that draw
                views, ps = views[:1], (0.1, 0.5)
            for ns in nss:
                for p in ps:
                    for off in offsets:
                        for vid, xv in views:
                            y, _ = impl.forward(xv, p, seed=SEED, offset=off, noise_shape=ns)
                            want, _ = ref.dropout_forward(xv, p, seed=SEED, offset=off, mask_format=None,
                                                          noise_shape=ns)
                            if not bits_equal(y, want):
                                return False, _diff(f"{dt} {vid}{shape} noise_shape={ns} p={p} offset={off}", y, want)
                            n += 1
                for fmt in fmts:
                    _, m = impl.forward(x, 0.3, seed=SEED, mask_format=fmt, noise_shape=ns)
                    _, mw = ref.dropout_forward(x, 0.3, seed=SEED, mask_format=fmt, noise_shape=ns)
                    if not bits_equal(m, mw):
                        return False, _diff(f"{fmt} mask {dt} {shape} noise_shape={ns}", m, mw)
                    if impl.capabilities.backward:
                        gx = impl.backward(g, 0.3, mask=m, noise_shape=ns)
                        want = ref.dropout_backward(g, 0.3, mask=mw, noise_shape=ns)
                        if not bits_equal(gx, want):
                            return False, _diff(f"backward from {fmt} {dt} {shape} noise_shape={ns}", gx, want)
                if impl.capabilities.backward and impl.capabilities.regenerate:
                    gx = impl.backward(g, 0.3, seed=SEED, offset=offsets[-1], noise_shape=ns)
                    want = ref.dropout_backward(g, 0.3, seed=SEED, offset=offsets[-1], noise_shape=ns)
                    if not bits_equal(gx, want):
                        return False, _diff(f"backward regenerated {dt} {shape} noise_shape={ns}", gx, want)
    if not n:
        raise Unsupported(f"{impl.name} supports none of the noise shapes tested")
    return True, f"outputs, masks and backward equal the reference with noise_shape ({n} forward calls)"


# --- 16-bit formats -----------------------------------------------------------------------------


def _half(impl, name):
    impl.require(f"dtype:{name}")
    dt = vocab.np_dtype(name)
    offsets = (0, 3) if impl.capabilities.offset else (0,)
    ps: tuple[float, ...] = P_VALUES
    if impl.simulated:  # the CUDA simulator: ~0.3 s a call
        ps, offsets = (0.1, 0.5), offsets[-1:]
    for cid, x in _cases(dt):
        for p in ps:
            for off in offsets:
                y, _ = impl.forward(x, p, seed=SEED, offset=off)
                want, _ = ref.dropout_forward(x, p, seed=SEED, offset=off, mask_format=None)
                if not bits_equal(y, want):
                    return False, _diff(f"{name} {cid} p={p} offset={off}", y, want)
    # special values: NaN, inf, signed zeros, max (overflows when scaled), smallest normal, subnormals
    import ml_dtypes

    fi = ml_dtypes.finfo(dt)
    x = nonzero_normal(dt, (72,))
    x[::9], x[1::9], x[2::9], x[3::9], x[4::9] = np.nan, np.inf, -np.inf, 0.0, -0.0
    x[5::9], x[6::9], x[7::9] = fi.max, fi.tiny, fi.smallest_subnormal
    for p in (0.0, 0.1, 0.5, 1.0):
        with np.errstate(invalid="ignore", over="ignore"):
            y, _ = impl.forward(x, p, seed=SEED)
            want, _ = ref.dropout_forward(x, p, seed=SEED, mask_format=None)
        if not bits_equal(y, want):
            return False, _diff(f"{name} special values p={p}", y, want)
    if impl.capabilities.backward:
        x, g = nonzero_normal(dt, (4097,)), nonzero_normal(dt, (4097,), seed=1)
        want = ref.dropout_backward(g, 0.3, seed=SEED)
        for fmt in impl.capabilities.mask_formats:
            _, m = impl.forward(x, 0.3, seed=SEED, mask_format=fmt)
            if not bits_equal(gx := impl.backward(g, 0.3, mask=m), want):
                return False, _diff(f"{name} backward from {fmt}", gx, want)
        if impl.capabilities.regenerate and not bits_equal(gx := impl.backward(g, 0.3, seed=SEED), want):
            return False, _diff(f"{name} backward regenerated", gx, want)
    return True, f"{name}: outputs (views, p 0 to 1, NaN, inf, max, subnormals) and backward equal the reference"


def float16(impl, strict=True):
    return _half(impl, "float16")


def bfloat16(impl, strict=True):
    return _half(impl, "bfloat16")


CHECKS = {
    "forward": ((), forward),
    "masks": ((), masks),
    "backward": (("backward",), backward),
    "special_values": ((), special_values),
    "seeds_and_offsets": ((), seeds_and_offsets),
    "noise_shape": (("noise_shape",), noise_shape),
    "float16": (("dtype:float16",), float16),
    "bfloat16": (("dtype:bfloat16",), bfloat16),
}
