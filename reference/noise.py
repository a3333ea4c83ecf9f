"""``noise_shape``: the forms users know, and how a mask broadcasts over an input.

A ``noise_shape`` has one entry per axis of ``x``: ``x.shape[d]`` (an independent decision
along the axis) or 1 (one decision shared along it). The mask ``M`` of that shape draws
stream positions in its own C order; ``y = (x * M) * scale`` broadcasts it (docs/RNG_STREAM.md).
"""

from __future__ import annotations

import numpy as np


def channel(shape) -> tuple:
    """Channel dropout (PyTorch's Dropout1d/2d/3d, Keras' SpatialDropout) of a ``(N, C, ...)``
    feature map: one decision per sample and channel, ``(N, C, 1, ..., 1)``."""
    if len(shape) < 2:
        raise ValueError(f"channel dropout needs (N, C, ...) input, got shape {tuple(shape)}")
    return tuple(shape[:2]) + (1,) * (len(shape) - 2)


def shared_over_time(shape) -> tuple:
    """Variational (recurrent) dropout of a ``(N, T, F)`` sequence: one mask per sample,
    shared by every time step, ``(N, 1, F)``."""
    if len(shape) != 3:
        raise ValueError(f"a mask shared over time needs (N, T, F) input, got shape {tuple(shape)}")
    return (shape[0], 1, shape[2])


def per_sample(shape) -> tuple:
    """Drop path / stochastic depth: one decision per sample, ``(N, 1, ..., 1)``."""
    if len(shape) < 1:
        raise ValueError("per-sample dropout needs at least one axis")
    return (shape[0],) + (1,) * (len(shape) - 1)


def broadcast_layout(shape, noise_shape) -> tuple[np.ndarray, np.ndarray]:
    """``(dims, mstrides)`` for the kernels: ``x``'s axes with size-1 axes dropped and
    neighbours of the same kind (shared or independent) merged, and each merged axis's stride
    in the C-ordered mask (0 along a shared axis)."""
    groups: list[list] = []  # [size, shared]
    for n, k in zip(shape, noise_shape):
        if n == 1:
            continue
        shared = k == 1
        if groups and groups[-1][1] == shared:
            groups[-1][0] *= n
        else:
            groups.append([n, shared])
    if not groups:
        groups = [[1, False]]
    dims = np.array([g[0] for g in groups], dtype=np.int64)
    mstrides = np.zeros(len(groups), dtype=np.int64)
    stride = 1
    for i in range(len(groups) - 1, -1, -1):
        if not groups[i][1]:
            mstrides[i] = stride
            stride *= groups[i][0]
    return dims, mstrides
