"""Contract checks (level 'contract'): the implementation claims our stream
(docs/RNG_STREAM.md), so it must equal the NumPy reference bit for bit: outputs, stored
masks, backward, special values, offsets and seeds that use all 64 bits."""

from __future__ import annotations

import numpy as np

import reference.dropout as ref

from .impl import Unsupported
from .semantic import _bits_equal, _x

SEED = 0x1234_5678_9ABC_DEF0
P_VALUES = (0.0, 1e-7, 0.1, 0.5, 0.9, 1 - 1e-7, 1.0)


def _cases(dt):
    yield "4097", _x(dt, (4097,))
    yield "7x13", _x(dt, (7, 13))
    yield "(13x7).T", _x(dt, (13, 7)).T
    yield "3x5x7 F-order", np.asfortranarray(_x(dt, (3, 5, 7)))
    yield "0-d", _x(dt, ())


def _diff(what, got, want):
    got = np.asarray(got)
    if got.shape != want.shape or got.dtype != want.dtype:
        return f"{what}: {got.dtype}{got.shape}, want {want.dtype}{want.shape}"
    return f"{what}: {int(np.count_nonzero(got != want))} of {want.size} elements differ"


def forward(impl, strict=True):
    offsets = (0, 3) if impl.capabilities.offset else (0,)
    for dt in impl.capabilities.dtypes:
        for cid, x in _cases(dt):
            for p in P_VALUES:
                for off in offsets:
                    y, _ = impl.forward(x, p, seed=SEED, offset=off)
                    want, _ = ref.dropout_forward(x, p, seed=SEED, offset=off, mask_format=None)
                    if not _bits_equal(y, want):
                        return False, _diff(f"{dt} {cid} p={p} offset={off}", y, want)
    return True, "outputs equal the reference bit for bit"


def masks(impl, strict=True):
    if not impl.capabilities.mask_formats:
        raise Unsupported(f"{impl.name} returns no mask")
    for fmt in impl.capabilities.mask_formats:
        for dt in impl.capabilities.dtypes:
            for cid, x in _cases(dt):
                _, m = impl.forward(x, 0.3, seed=SEED, mask_format=fmt)
                _, want = ref.dropout_forward(x, 0.3, seed=SEED, mask_format=fmt)
                if not _bits_equal(m, want):
                    return False, _diff(f"{fmt} mask {dt} {cid}", m, want)
    return True, "stored masks equal the reference in " + ", ".join(impl.capabilities.mask_formats)


def backward(impl, strict=True):
    impl.require("backward")
    for dt in impl.capabilities.dtypes:
        x, g = _x(dt, (4097,)), _x(dt, (4097,), seed=1)
        want = ref.dropout_backward(g, 0.3, seed=SEED, offset=0)
        for fmt in impl.capabilities.mask_formats:
            _, m = impl.forward(x, 0.3, seed=SEED, mask_format=fmt)
            gx = impl.backward(g, 0.3, mask=m)
            if not _bits_equal(gx, want):
                return False, _diff(f"backward from {fmt} {dt}", gx, want)
        if impl.capabilities.regenerate:
            gx = impl.backward(g, 0.3, seed=SEED)
            if not _bits_equal(gx, want):
                return False, _diff(f"backward regenerated {dt}", gx, want)
    return True, "backward equals the reference"


def special_values(impl, strict=True):
    for dt in impl.capabilities.dtypes:
        x = _x(dt, (64,))
        x[::7], x[1::7], x[2::7], x[3::7], x[4::7] = np.nan, np.inf, -np.inf, 0.0, -0.0
        x[5::7], x[6::7] = np.finfo(dt).max, np.finfo(dt).tiny / 4
        for p in (0.0, 0.5, 1.0):
            with np.errstate(invalid="ignore", over="ignore"):
                y, _ = impl.forward(x, p, seed=SEED)
                want, _ = ref.dropout_forward(x, p, seed=SEED, mask_format=None)
            if not _bits_equal(y, want):
                return False, _diff(f"{dt} p={p}", y, want)
    return True, "NaN, inf, signed zeros, max and subnormals as the reference"


def seeds_and_offsets(impl, strict=True):
    pairs = [(2**64 - 1, 0), (2**32, 0), (2**63 + 5, 0)]
    if impl.capabilities.offset:
        pairs += [(2**64 - 1, 2**64 - 127), (2**32, 2**34 + 1), (1, 2**63 - 3), (7, 2**32 - 2)]
    dt = impl.capabilities.dtypes[0]
    x = _x(dt, (127,))
    for seed, off in pairs:
        y, _ = impl.forward(x, 0.5, seed=seed, offset=off)
        want, _ = ref.dropout_forward(x, 0.5, seed=seed, offset=off, mask_format=None)
        if not _bits_equal(y, want):
            return False, _diff(f"seed={seed:#x} offset={off:#x}", y, want)
    return True, "all 64 bits of the seed" + (" and the offset" if impl.capabilities.offset else "")


CHECKS = {
    "forward": ((), forward),
    "masks": ((), masks),
    "backward": (("backward",), backward),
    "special_values": ((), special_values),
    "seeds_and_offsets": ((), seeds_and_offsets),
}
