"""Argument checks shared by every backend: one place says what is allowed.

Each check raises ``TypeError`` (wrong kind of thing) or ``ValueError`` (right kind,
wrong value) naming the argument and the allowed range, and never touches the data.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from .stream import STREAM_END

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
MASK_FORMATS = ("bool", "bits", None)


def check_p(p) -> float:
    if isinstance(p, (bool, np.bool_)) or not isinstance(p, numbers.Real):
        raise TypeError(f"p must be a real number in [0, 1], got {type(p).__name__}")
    p = float(p)
    if math.isnan(p) or not 0.0 <= p <= 1.0:
        raise ValueError(f"p must be in [0, 1], got {p!r}")
    return p


def _check_u64(value, name: str) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer in [0, 2**64), got {type(value).__name__}")
    value = int(value)
    if not 0 <= value < STREAM_END:
        raise ValueError(f"{name} must be in [0, 2**64), got {value}")
    return value


def check_seed_offset(seed, offset, numel: int) -> tuple[int, int]:
    seed = _check_u64(seed, "seed")
    offset = _check_u64(offset, "offset")
    if offset + numel > STREAM_END:
        raise ValueError(
            f"offset + x.size must be <= 2**64 (the stream's end), got offset={offset} "
            f"and {numel} elements"
        )
    return seed, offset


def check_training(training) -> bool:
    if not isinstance(training, (bool, np.bool_)):
        raise TypeError(f"training must be a bool, got {type(training).__name__}")
    return bool(training)


def check_mask_format(mask_format):
    if mask_format not in MASK_FORMATS:
        raise ValueError(f"mask_format must be one of 'bool', 'bits' or None, got {mask_format!r}")
    return mask_format


def check_float_dtype(dtype, name: str) -> np.dtype:
    try:
        dtype = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"{name} must have dtype float32 or float64, got {dtype!r}") from None
    if dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name} must have dtype float32 or float64, got {dtype}")
    return dtype


def n_mask_bytes(numel: int) -> int:
    """Length of a ``"bits"`` mask: one bit per element, little bit order."""
    return (numel + 7) // 8


def mask_format_of(mask_shape, mask_dtype, shape, numel: int) -> str:
    """Which stored format ``mask`` is, checked against the gradient's shape."""
    mask_dtype = np.dtype(mask_dtype)
    if mask_dtype == np.bool_:
        if tuple(mask_shape) != tuple(shape):
            raise ValueError(
                f"mask of dtype bool must have the gradient's shape {tuple(shape)}, "
                f"got {tuple(mask_shape)}"
            )
        return "bool"
    if mask_dtype == np.uint8:
        want = n_mask_bytes(numel)
        if tuple(mask_shape) != (want,):
            raise ValueError(
                f"mask of dtype uint8 ('bits' format) must be 1-D of length ceil(size/8) = "
                f"{want}, got shape {tuple(mask_shape)}"
            )
        return "bits"
    raise TypeError(f"mask must have dtype bool ('bool' format) or uint8 ('bits' format), got {mask_dtype}")


def check_backward_source(mask, seed):
    if mask is None and seed is None:
        raise ValueError("dropout_backward needs the forward mask (mask=...) or the forward seed (seed=...)")


# --- NumPy front end (reference and CPU backends) ---------------------------------


def as_float_array(x, name: str) -> np.ndarray:
    if not isinstance(x, np.ndarray):
        if hasattr(x, "__cuda_array_interface__"):
            raise TypeError(f"{name} is a GPU array; this backend takes NumPy arrays (use the 'cuda' backend)")
        x = np.asarray(x)
    check_float_dtype(x.dtype, name)
    return x


def as_mask_array(mask, shape, numel: int) -> tuple[np.ndarray, str]:
    if not isinstance(mask, np.ndarray):
        raise TypeError(f"mask must be a NumPy array of dtype bool or uint8, got {type(mask).__name__}")
    return mask, mask_format_of(mask.shape, mask.dtype, shape, numel)


def check_out(out, like: np.ndarray, name: str = "out", *inputs: np.ndarray) -> np.ndarray | None:
    """``out`` must be a writeable NumPy array of ``like``'s shape and dtype, apart from the inputs."""
    if out is None:
        return None
    if not isinstance(out, np.ndarray):
        raise TypeError(f"{name} must be a NumPy array, got {type(out).__name__}")
    if out.shape != like.shape or out.dtype != like.dtype:
        raise ValueError(
            f"{name} must have shape {like.shape} and dtype {like.dtype}, got {out.shape} and {out.dtype}"
        )
    if not out.flags.writeable:
        raise ValueError(f"{name} must be writeable")
    for a in (like,) + inputs:
        if a is not None and np.shares_memory(out, a):
            raise ValueError(f"{name} must not overlap the input arrays (in-place dropout is not supported)")
    return out


def numpy_forward_args(x, p, seed, offset, training, mask_format, out):
    """Every forward argument of a NumPy backend, checked; returns them normalized, in order."""
    x = as_float_array(x, "x")
    p = check_p(p)
    training = check_training(training)
    mask_format = check_mask_format(mask_format)
    seed, offset = check_seed_offset(seed, offset, x.size)
    return x, p, seed, offset, training, mask_format, check_out(out, x)


def numpy_backward_args(grad_y, p, mask, seed, out):
    """``(grad_y, p, out)`` of a NumPy backend's backward, checked (the mask is checked by
    :func:`as_mask_array`, the seed by :func:`check_seed_offset` when it is used)."""
    g = as_float_array(grad_y, "grad_y")
    p = check_p(p)
    check_backward_source(mask, seed)
    return g, p, check_out(out, g, "out", mask if isinstance(mask, np.ndarray) else None)
