"""Bytes each operation must move through memory: the basis of every GB/s figure.

The count is the minimum the operation's contract needs, not what an implementation
happens to move: reading ``x`` once and writing ``y`` once (``2 * itemsize`` per element),
plus writing (forward) or reading (backward from a stored mask) the mask: 1 byte per
element for a ``'bool'`` mask, ``ceil(n / 8)`` bytes in all for ``'bits'``, nothing when the
mask is not stored (forward with ``mask_format=None``) or is regenerated from the seed
(backward with ``mask=None``). A copy moves ``2 * itemsize`` per element; PyTorch's
``native_dropout`` and ``native_dropout_backward`` move a bool mask, so ``2 * itemsize + 1``.

An implementation that moves more (a temporary array, a second pass) shows up as a lower
GB/s, which is the point: GB/s here is "fraction of the work a copy-speed kernel would do".
"""

from __future__ import annotations

import numpy as np

OPERATIONS = ("forward", "backward", "copy")
MASK_FORMATS = (None, "bool", "bits")


def mask_bytes(mask_format, n: int) -> int:
    """Bytes of a stored mask of ``n`` elements in ``mask_format``."""
    if mask_format is None:
        return 0
    if mask_format == "bool":
        return n
    if mask_format == "bits":
        return (n + 7) // 8
    raise ValueError(f"unknown mask format {mask_format!r}")


def bytes_moved(operation: str, mask_format, n: int, dtype) -> int:
    """Minimum bytes read plus written by ``operation`` on ``n`` elements of ``dtype``.

    ``mask_format`` is the mask written by a forward pass, or the stored mask read by a
    backward pass (``None``: backward regenerates the mask from the seed, reading nothing).
    """
    itemsize = np.dtype(dtype).itemsize
    data = 2 * itemsize * n
    if operation == "copy":
        return data
    if operation in ("forward", "backward"):
        return data + mask_bytes(mask_format, n)
    raise ValueError(f"unknown operation {operation!r}; expected one of {OPERATIONS}")
