"""The overlap rule of ``out=``, written once for NumPy arrays and device arrays.

``out`` may be the input itself (in place: each element is read before it is written, by the
same loop iteration) or lie apart from every input; it must never overlap itself (a stride-0
or otherwise self-overlapping view would have some elements written twice).

Cheap tests first, from the arrays' interfaces alone: identical layouts are in place, disjoint
byte extents cannot overlap, and a layout whose sorted strides each step over everything the
smaller ones span holds distinct elements. Only where that leaves a doubt does the exact test
run: ``np.shares_memory`` with bounded work, and the element offsets themselves for a
self-overlap; where even that would cost too much, the answer is the conservative one
(overlap), with a message that says so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

#: Work allowed to ``np.shares_memory`` before the answer is "may overlap" (refused).
MAX_WORK = 1 << 16
#: Largest array whose element offsets are sorted to decide a self-overlap exactly.
MAX_EXACT = 1 << 22


@dataclass(frozen=True)
class Memory:
    """Where an array's elements lie: byte address, shape, byte strides, item size."""

    ptr: int
    shape: tuple[int, ...]
    strides: tuple[int, ...]
    itemsize: int

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    def extent(self) -> tuple[int, int]:
        """``[lo, hi)``: the bytes the elements span (empty for an empty array)."""
        if self.size == 0:
            return self.ptr, self.ptr
        lo = self.ptr + sum(s * (n - 1) for n, s in zip(self.shape, self.strides) if s < 0)
        hi = self.ptr + sum(s * (n - 1) for n, s in zip(self.shape, self.strides) if s > 0) + self.itemsize
        return lo, hi

    def layout(self) -> tuple:
        """What decides the addresses: the strides of the axes longer than 1 matter only."""
        axes = tuple((n, s) for n, s in zip(self.shape, self.strides) if n != 1)
        return self.ptr, self.itemsize, axes


def memory_of(a) -> Memory:
    """The :class:`Memory` of a NumPy array, a ``__cuda_array_interface__`` array, or the CUDA
    simulator's stand-in (which forwards ``__array_interface__`` to the array it wraps)."""
    iface = getattr(a, "__cuda_array_interface__", None) or a.__array_interface__
    shape = tuple(int(n) for n in iface["shape"])
    itemsize = np.dtype(iface["typestr"]).itemsize
    strides = iface.get("strides")
    if strides is None:  # C-contiguous
        strides, step = [], itemsize
        for n in reversed(shape):
            strides.append(step)
            step *= n
        strides = strides[::-1]
    return Memory(int(iface["data"][0]), shape, tuple(int(s) for s in strides), itemsize)


def same_memory(a: Memory, b: Memory) -> bool:
    """The same elements at the same addresses (``out=x``)."""
    return a.layout() == b.layout()


def overlaps_itself(m: Memory) -> bool:
    """Some two elements of ``m`` share a byte (exact up to :data:`MAX_EXACT` elements,
    conservative beyond)."""
    axes = sorted((abs(s), n) for n, s in zip(m.shape, m.strides) if n > 1)
    if m.size <= 1 or not axes:
        return False
    span = m.itemsize  # bytes spanned by the axes of smaller strides
    for stride, n in axes:
        if stride < span:
            break
        span += stride * (n - 1)
    else:
        return False  # each stride steps over all the smaller ones span: distinct elements
    if axes[0][0] == 0:
        return True  # a stride-0 axis repeats its elements
    if m.size > MAX_EXACT:
        return True
    offsets = np.zeros(1, dtype=np.int64)
    for stride, n in axes:
        offsets = np.add.outer(offsets, np.arange(n, dtype=np.int64) * stride).reshape(-1)
    offsets.sort()
    return bool((np.diff(offsets) < m.itemsize).any())


def may_share(a, b, ma: Memory, mb: Memory) -> bool:
    """``a`` and ``b`` may share a byte: disjoint extents cannot; NumPy arrays get the exact
    answer within :data:`MAX_WORK` (else True); device arrays (C-contiguous, which the CUDA
    backend requires) are their extents."""
    (alo, ahi), (blo, bhi) = ma.extent(), mb.extent()
    if ahi <= blo or bhi <= alo:
        return False
    if isinstance(a, np.ndarray) and isinstance(b, np.ndarray):
        try:
            return bool(np.shares_memory(a, b, max_work=MAX_WORK))
        except np.exceptions.TooHardError:
            return True
    return True


def numpy_same_memory(a: np.ndarray, b: np.ndarray) -> bool:
    """:func:`same_memory` for two NumPy arrays, without building their :class:`Memory`."""
    if a is b:
        return True
    if a.dtype.itemsize != b.dtype.itemsize or a.__array_interface__["data"][0] != b.__array_interface__["data"][0]:
        return False
    return ([(n, s) for n, s in zip(a.shape, a.strides) if n != 1]
            == [(n, s) for n, s in zip(b.shape, b.strides) if n != 1])


def _numpy_decided(out, x, masks) -> bool:
    """The common cases, decided in microseconds: NumPy arrays, ``out`` contiguous (so its
    elements are distinct), either ``x`` itself (in place) or with bounds apart from ``x``'s,
    and apart from every mask's."""
    if not (isinstance(out, np.ndarray) and isinstance(x, np.ndarray)):
        return False
    if not (out.flags.c_contiguous or out.flags.f_contiguous):
        return False
    if np.may_share_memory(out, x) and not numpy_same_memory(out, x):
        return False
    return all(m is None or (isinstance(m, np.ndarray) and not np.may_share_memory(out, m)) for m in masks)


def check_out_memory(out, x, masks=(), name: str = "out") -> None:
    """Refuse an ``out`` that overlaps itself, overlaps ``x`` without being ``x`` (in place),
    or overlaps one of the ``masks`` (None entries are skipped)."""
    if _numpy_decided(out, x, masks):
        return
    mo = memory_of(out)
    if overlaps_itself(mo):
        raise ValueError(f"{name} overlaps itself (e.g. a stride-0 view): some of its elements would be "
                         f"written twice; pass an array with distinct elements, e.g. {name}.copy()")
    mx = memory_of(x)
    if mo.size and not same_memory(mo, mx) and may_share(out, x, mo, mx):
        raise ValueError(f"{name} must be the input itself (in place) or not overlap it")
    for mask in masks:
        if mask is not None and mo.size and may_share(out, mask, mo, memory_of(mask)):
            raise ValueError(f"{name} must not overlap the mask")
