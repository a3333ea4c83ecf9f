"""Layout probe (issue 21, item 4): the same logical input in C order and in another memory
layout must be dropped the same way.

Each check hands the implementation one logical array twice, with the same seed and p: once
in C order and once in another layout (a transposed view, an F-ordered copy, channels-last
4-D, a reversed axis), and compares the two outputs: the kept sets (``y != 0``; the inputs
have no zeros) and, at level contract, the values bit for bit. Our stream draws by the
logical C-order index (README: "transposed, sliced and F-ordered views draw by their logical
C-order index"), so at level contract any difference is a failure. At level statistical a
layout-dependent mask is no error (PyTorch's CPU dropout draws in memory order: a transposed
or channels-last tensor gets another mask for the same seed), so a difference is raised as a
:class:`Note` (a "note" row). The detail says what was compared, how many of the n mask
elements differ, and whether the other layout's mask is the C-order mask laid out in memory
order (the signature of a mask drawn in memory order).

Each check is ``fn(impl, strict) -> (passed, detail)`` (as in :mod:`.semantic`) on the first
of the implementation's float32/float64 dtypes. An implementation that refuses a layout
raises; the runner makes that an error row (or "not supported" for ``Unsupported``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .arrays import bits_equal, nonzero_normal
from .protocol import Note, Unsupported
from .semantic import SEED

P = 0.5  # the most mask elements that can differ


@dataclass(frozen=True)
class Layout:
    what: str                           # for the reader: how the other layout is stored
    shape: tuple                        # the logical shape (a few thousand elements)
    store: Callable                     # logical C-order array -> the same values in this layout
    memory: Callable                    # an array of the logical shape -> a view whose C order is
                                        # the memory order of ``store(x)`` (for the diagnosis)


LAYOUTS = {
    "transposed": Layout(
        "a transposed view (x = a.T of a C-ordered a)",
        (48, 64), lambda x: np.ascontiguousarray(x.T).T, lambda a: a.T),
    "transposed_copy": Layout(
        "an F-ordered copy (np.asfortranarray(x): the layout of x.T.copy().T)",
        (10, 16, 24), np.asfortranarray, lambda a: a.transpose()),
    "channels_last": Layout(
        "channels-last (NCHW stored NHWC: a.transpose(0, 3, 1, 2) of a C-ordered a)",
        (4, 8, 10, 12), lambda x: np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2),
        lambda a: a.transpose(0, 2, 3, 1)),
    "negative_stride": Layout(
        "a negative stride (x = a[:, ::-1] of a C-ordered a)",
        (48, 64), lambda x: np.ascontiguousarray(x[:, ::-1])[:, ::-1], lambda a: a[:, ::-1]),
}


def _dtype(impl):
    dts = impl.capabilities.base_dtypes
    if not dts:
        raise Unsupported(f"{impl.name} accepts neither float32 nor float64 input")
    return dts[0]


def compare(impl, strict, name: str):
    """The check of layout ``name`` (a key of :data:`LAYOUTS`)."""
    lay = LAYOUTS[name]
    dt = _dtype(impl)
    xc = nonzero_normal(dt, lay.shape)
    xl = lay.store(xc)
    assert np.array_equal(xl, xc) and not xl.flags.c_contiguous, name  # the same values, another layout
    yc, _ = impl.forward(xc, P, seed=SEED)
    yl, _ = impl.forward(xl, P, seed=SEED)
    bits = getattr(impl, "seed_bits", 64)
    what = (f"{np.dtype(dt).name}{lay.shape} as {lay.what}, strides {xl.strides}, p = {P}, seed {SEED:#x}"
            + (f" (folded to {bits} bits)" if bits < 64 else ""))
    if yl.shape != xl.shape or yl.dtype != xl.dtype:
        return False, f"{what}: output {yl.dtype}{yl.shape} for input {xl.dtype}{xl.shape}"
    kc, kl = yc != 0, yl != 0
    n, diff = kc.size, int(np.count_nonzero(kc != kl))
    if diff:
        in_memory_order = np.array_equal(np.ravel(lay.memory(kl)), np.ravel(kc))
        detail = (f"{what} vs the same values in C order: {diff} of {n} mask elements differ "
                  f"({100 * diff / n:.1f} %): the mask depends on the memory layout"
                  + ("; it is the C-order mask laid out in memory order (drawn by memory position, not "
                     "by logical index)" if in_memory_order else ""))
    elif not bits_equal(yl, yc):
        bad = int(np.count_nonzero(yl.view(f"u{yl.itemsize}") != yc.view(f"u{yc.itemsize}")))
        detail = (f"{what} vs the same values in C order: the same mask, but {bad} of {n} kept values "
                  "differ in their bits")
        if not strict:  # values within the statistical level's tolerance are semantic/kept_scaled's business
            return True, detail + " (compared bit for bit at level contract only)"
    else:
        return True, f"{what}: the same mask and the same bits as in C order ({n} elements)"
    if strict:
        return False, detail
    raise Note(detail + "; allowed at level statistical, a failure at level contract")


def transposed(impl, strict):
    """A transposed view of a 2-D array drops what its C-order copy drops (level contract: the
    same bits; level statistical: a difference is a note)."""
    return compare(impl, strict, "transposed")


def transposed_copy(impl, strict):
    """An F-ordered 3-D array drops what its C-order copy drops."""
    return compare(impl, strict, "transposed_copy")


def channels_last(impl, strict):
    """A channels-last NCHW array drops what its C-order copy drops."""
    return compare(impl, strict, "channels_last")


def negative_stride(impl, strict):
    """A view with a reversed axis (negative stride) drops what its C-order copy drops."""
    return compare(impl, strict, "negative_stride")


CHECKS = {  # name -> (needs, fn)
    "transposed": ((), transposed),
    "transposed_copy": ((), transposed_copy),
    "channels_last": ((), channels_last),
    "negative_stride": ((), negative_stride),
}
