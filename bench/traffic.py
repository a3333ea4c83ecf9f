"""Bytes each operation must move through memory: the basis of every GB/s figure.

The count is the minimum the operation's contract needs, not what an implementation
happens to move: reading ``x`` once and writing ``y`` once (``2 * itemsize`` per element;
float16 and bfloat16 have 2 bytes per element), plus writing (forward) or reading (backward
from a stored mask) the mask: 1 byte per mask element for a ``'bool'`` mask, ``ceil(m / 8)``
bytes in all for ``'bits'``, nothing when the mask is not stored (forward with
``mask_format=None``) or is regenerated from the seed (backward with ``mask=None``). A copy
moves ``2 * itemsize`` per element; PyTorch's ``native_dropout`` and
``native_dropout_backward`` move a bool mask, so ``2 * itemsize + 1``.

The mask has ``m = n`` elements, except for channel dropout (``forward_channel``,
``backward_channel``: ``noise_shape = (N, C, 1, 1)`` of the ``(N, C, H, W)`` map of
``bench.grid.channel_map_shape``), where it has ``m = N * C = n / 1024``: x read, y written and
that small mask. An in-place call (``forward_inplace``, ``backward_inplace``) moves the same
bytes as the out-of-place one: it reads every element and writes every element, only to
the same place.

An implementation that moves more (a temporary array, a second pass) shows up as a lower
GB/s, which is the point: GB/s here is "fraction of the work a copy-speed kernel would do".
"""

from __future__ import annotations

from reference import vocab

from . import grid

OPERATIONS = grid.OPERATIONS + grid.AS_CALLED + grid.COPIES


def itemsize(dtype) -> int:
    """Bytes per element: 2 for float16 and bfloat16."""
    return vocab.np_dtype(dtype).itemsize


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
    data = 2 * itemsize(dtype) * n
    if operation in grid.COPIES:
        return data
    if operation in grid.OPERATIONS or operation in grid.AS_CALLED:
        return data + mask_bytes(mask_format, grid.mask_elements(operation, n))
    raise ValueError(f"unknown operation {operation!r}; expected one of {OPERATIONS}")
