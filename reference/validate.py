"""The front end every backend calls: one place says what is allowed, in what order.

Each check raises ``TypeError`` (wrong kind of thing) or ``ValueError`` (right kind,
wrong value) naming the argument and the allowed range, and never touches the data.
:func:`forward_call` and :func:`backward_call` run the checks that do not depend on the
array type, in the one order every backend follows, and return a :class:`Call`; the
array-type layers are thin: NumPy's below (the reference and CPU backends, and the CUDA
backend's host arrays), device arrays in kernels/cuda.py, Dask arrays in kernels/dask.py.
The overlap rule of ``out=`` is reference/overlap.py.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numpy as np

from .masks import n_mask_bytes
from .overlap import check_out_memory, memory_of, numpy_same_memory, same_memory
from .stream import STREAM_END
from .vocab import DTYPE_NAMES_TEXT, MASK_FORMATS, is_float_dtype


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def check_p(p) -> float:
    if type(p) is float and 0.0 <= p <= 1.0:  # the common case, first (NaN fails the comparison)
        return p
    if isinstance(p, np.ndarray) and p.ndim == 0 and p.dtype.kind in "fiu":
        p = p[()]  # a 0-d array is a number
    if isinstance(p, (bool, np.bool_)) or not isinstance(p, numbers.Real):
        raise TypeError(f"p must be a real number in [0, 1], got {type(p).__name__}")
    try:
        p = float(p)
    except OverflowError:  # an integer too large for a double
        raise ValueError(f"p must be in [0, 1], got {_short(p)}") from None
    if math.isnan(p) or not 0.0 <= p <= 1.0:
        raise ValueError(f"p must be in [0, 1], got {p!r}")
    return p


def _check_u64(value, name: str) -> int:
    if type(value) is int and 0 <= value < STREAM_END:  # the common case, first
        return value
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
    if training is True or training is False:
        return training
    if not isinstance(training, (bool, np.bool_)):
        raise TypeError(f"training must be a bool, got {type(training).__name__}")
    return bool(training)


def check_mask_format(mask_format):
    if mask_format is not None and not isinstance(mask_format, str):
        raise TypeError(f"mask_format must be 'bool', 'bits' or None, got {type(mask_format).__name__}")
    if mask_format not in MASK_FORMATS:
        raise ValueError(f"mask_format must be one of 'bool', 'bits' or None, got {mask_format!r}")
    return mask_format


_ACCEPTED_DTYPES: set = set()  # dtypes already accepted: a set lookup for the next call


def check_float_dtype(dtype, name: str) -> np.dtype:
    if isinstance(dtype, np.dtype) and dtype in _ACCEPTED_DTYPES:
        return dtype
    try:
        dtype = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"{name} must have dtype {DTYPE_NAMES_TEXT}, got {dtype!r}") from None
    if dtype.kind == "f" and not dtype.isnative:
        raise TypeError(
            f"{name} has non-native byte order ({dtype.str}); the kernels read native floats: "
            f"convert with {name}.astype({name}.dtype.newbyteorder('='))"
        )
    if not is_float_dtype(dtype):
        raise TypeError(f"{name} must have dtype {DTYPE_NAMES_TEXT}, got {dtype}")
    _ACCEPTED_DTYPES.add(dtype)
    return dtype


def check_noise_shape(noise_shape, shape) -> tuple | None:
    """``noise_shape`` normalized: None (one decision per element) or a tuple with, per axis,
    ``shape[d]`` (independent) or 1 (one decision shared along the axis); ``None`` entries
    mean ``shape[d]``."""
    if noise_shape is None:
        return None
    if isinstance(noise_shape, (str, bytes)) or not hasattr(noise_shape, "__len__"):
        raise TypeError(f"noise_shape must be None or a tuple of ints, got {type(noise_shape).__name__}")
    if len(noise_shape) != len(shape):
        raise ValueError(
            f"noise_shape must have one entry per dimension of x ({len(shape)}), got {tuple(noise_shape)}"
        )
    out = []
    for d, (k, n) in enumerate(zip(noise_shape, shape)):
        if k is None:
            k = n
        if isinstance(k, (bool, np.bool_)) or not isinstance(k, numbers.Integral):
            raise TypeError(f"noise_shape[{d}] must be an int (1 or x.shape[{d}] = {n}) or None, got {k!r}")
        k = int(k)
        if k not in (1, n):
            raise ValueError(f"noise_shape[{d}] must be 1 (shared) or x.shape[{d}] = {n}, got {k}")
        out.append(k)
    return tuple(out)


def n_mask_elements(shape, noise_shape) -> int:
    """Stream positions a call consumes: one per mask element."""
    return math.prod(shape if noise_shape is None else noise_shape)


def mask_format_of(mask_shape, mask_dtype, shape, numel: int, what: str = "the gradient's shape") -> str:
    """Which stored format ``mask`` is, checked against the mask's ``shape`` (the gradient's,
    or ``noise_shape``) and its ``numel`` elements."""
    mask_dtype = np.dtype(mask_dtype)
    if mask_dtype == np.bool_:
        if tuple(mask_shape) != tuple(shape):
            raise ValueError(f"mask of dtype bool must have {what} {tuple(shape)}, got {tuple(mask_shape)}")
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


def mask_type_error(mask, arrays: str) -> TypeError:
    """The error for a ``mask`` that is no array this backend takes (``arrays`` says which)."""
    return TypeError(f"mask must be {arrays} of dtype bool or uint8, got {type(mask).__name__}")


def check_backward_source(mask, seed, offset, numel: int):
    """``(seed, offset)`` of a backward call, checked. Every backend checks a given seed and
    the offset even when a stored mask makes them unused, so that all backends agree."""
    if mask is None and seed is None:
        raise ValueError("dropout_backward needs the forward mask (mask=...) or the forward seed (seed=...)")
    if seed is None:
        return None, _check_u64(offset, "offset")
    return check_seed_offset(seed, offset, numel)


def check_out_like(shape, dtype, out_shape, out_dtype, name: str = "out") -> None:
    if tuple(out_shape) != tuple(shape) or out_dtype != dtype:
        raise ValueError(f"{name} must have shape {tuple(shape)} and dtype {dtype}, got {tuple(out_shape)} "
                         f"and {out_dtype}")


# --- the shared sequence ------------------------------------------------------------


@dataclass(slots=True)  # not frozen: a frozen dataclass costs microseconds to build, per call
class Call:
    """A call's arguments, checked and normalized (whatever the array type)."""

    shape: tuple
    dtype: np.dtype
    p: float
    seed: int | None
    offset: int
    noise_shape: tuple | None
    training: bool = True
    mask_format: str | None = None

    @property
    def mask_shape(self) -> tuple:
        """The mask's shape: ``x``'s, or ``noise_shape``."""
        return self.shape if self.noise_shape is None else self.noise_shape

    @property
    def n_mask(self) -> int:
        """Stream positions the call consumes: one per mask element."""
        return math.prod(self.mask_shape)

    @property
    def broadcast(self) -> bool:
        """A ``noise_shape`` with a shared axis: the mask is smaller than ``x`` and broadcasts."""
        return self.noise_shape is not None and self.noise_shape != self.shape

    def stored_mask_format(self, mask_shape, mask_dtype) -> str:
        """The format of a stored mask given to backward, checked against this call."""
        what = "the gradient's shape" if self.noise_shape is None else "shape noise_shape ="
        return mask_format_of(mask_shape, mask_dtype, self.mask_shape, self.n_mask, what)


def forward_call(dtype, shape, p, seed, offset, training, mask_format, noise_shape, name: str = "x") -> Call:
    """Every forward argument but the arrays' own (type, ``out``), checked in the one order."""
    dtype = check_float_dtype(dtype, name)
    p = check_p(p)
    training = check_training(training)
    mask_format = check_mask_format(mask_format)
    shape = tuple(int(n) for n in shape)
    noise_shape = None if noise_shape is None else check_noise_shape(noise_shape, shape)
    seed, offset = check_seed_offset(seed, offset, n_mask_elements(shape, noise_shape))
    return Call(shape, dtype, p, seed, offset, noise_shape, training, mask_format)


def backward_call(dtype, shape, p, mask, seed, offset, noise_shape, name: str = "grad_y") -> Call:
    """Every backward argument but the arrays' own (type, the mask's format, ``out``)."""
    dtype = check_float_dtype(dtype, name)
    p = check_p(p)
    shape = tuple(int(n) for n in shape)
    noise_shape = check_noise_shape(noise_shape, shape)
    seed, offset = check_backward_source(mask, seed, offset, n_mask_elements(shape, noise_shape))
    return Call(shape, dtype, p, seed, offset, noise_shape)


# --- NumPy front end (reference and CPU backends, the CUDA backend's host arrays) ---------

NUMPY_ARRAYS = "a NumPy array"


def refuse_masked(a, name: str):
    if isinstance(a, np.ma.MaskedArray):
        raise TypeError(
            f"{name} is a masked array; dropout has no rule for masked elements: pass "
            f"{name}.filled(value) or {name}.data"
        )


def as_numpy(x, name: str) -> np.ndarray:
    """``x`` as a base-class ndarray view: no subclass semantics (``np.matrix`` keeps 2-D
    under ``reshape(-1)``) may reach a compiled kernel."""
    refuse_masked(x, name)
    if not isinstance(x, np.ndarray) and hasattr(x, "__cuda_array_interface__"):
        raise TypeError(f"{name} is a GPU array; this backend takes NumPy arrays (use the 'cuda' backend)")
    return np.asarray(x)


def as_float_array(x, name: str) -> np.ndarray:
    """:func:`as_numpy`, of one of the float dtypes."""
    x = as_numpy(x, name)
    check_float_dtype(x.dtype, name)
    return x


def as_mask_array(mask, call: Call, arrays: str = NUMPY_ARRAYS) -> tuple[np.ndarray, str]:
    """A stored ``mask`` given as a NumPy array: a base-class view, and its format."""
    refuse_masked(mask, "mask")
    if not isinstance(mask, np.ndarray):
        raise mask_type_error(mask, arrays)
    mask = np.asarray(mask)
    return mask, call.stored_mask_format(mask.shape, mask.dtype)


def check_out(out, like: np.ndarray, name: str = "out", *inputs) -> np.ndarray | None:
    """``out`` must be a writeable NumPy array of ``like``'s shape and dtype, with distinct
    elements, and be ``like`` itself or lie apart from it and from the ``inputs``.

    Returns a base-class view of ``out`` to write into; the backends return the caller's
    ``out`` object itself (as NumPy's ``out=`` does), see :func:`returned`.
    """
    if out is None:
        return None
    refuse_masked(out, name)
    if not isinstance(out, np.ndarray):
        raise TypeError(f"{name} must be a NumPy array, got {type(out).__name__}")
    view = np.asarray(out)
    check_out_like(like.shape, like.dtype, view.shape, view.dtype, name)
    if not view.flags.writeable:
        raise ValueError(f"{name} must be writeable")
    check_out_memory(view, like, inputs, name)
    return view


def is_same_memory(a, b) -> bool:
    """The same elements at the same addresses: ``out=x`` in place, which the kernels allow
    (each element is read before it is written, by the same loop iteration)."""
    if isinstance(a, np.ndarray) and isinstance(b, np.ndarray):
        return a.dtype == b.dtype and numpy_same_memory(a, b)
    return a.dtype == b.dtype and same_memory(memory_of(a), memory_of(b))


def returned(result, out):
    """What a call returns: the caller's ``out`` object when one was given, else ``result``."""
    return result if out is None else out


# --- the common call, accepted without the general sequence -------------------------------
#
# A layer-sized call costs what its checks cost (the kernel itself takes about a microsecond at
# 256 elements), so the NumPy backends first ask these two predicates. They accept a strict
# subset of what the general sequence accepts (tests/test_validate_fast.py holds them to it):
# exact types, a dtype already accepted once, contiguous arrays, an ``out`` that is the input
# itself or whose bounds lie apart. Anything else, valid or not, answers False, and the
# general sequence then decides (and words the error).


def _fast_out(out, like: np.ndarray, mask=None) -> bool:
    if out is None:
        return True
    if type(out) is not np.ndarray or out.dtype != like.dtype or out.shape != like.shape:
        return False
    flags = out.flags
    if not (flags.c_contiguous and flags.writeable):  # contiguous: distinct elements
        return False
    if out is not like and np.may_share_memory(out, like):
        return False
    return mask is None or not np.may_share_memory(out, mask)


def _fast_array(a) -> bool:
    return type(a) is np.ndarray and a.dtype in _ACCEPTED_DTYPES and a.size > 0 and a.flags.c_contiguous


def _fast_p_offset(p, offset, numel: int) -> bool:
    return type(p) is float and 0.0 <= p <= 1.0 and type(offset) is int and 0 <= offset <= STREAM_END - numel


def fast_forward_ok(x, p, seed, offset, training, mask_format, out, noise_shape) -> bool:
    """The forward call is one the general sequence accepts as given: no normalization, no
    copy, no error; ``out`` (if any) is ``x`` itself (in place) or apart from it."""
    return (training is True and noise_shape is None and _fast_array(x)
            and _fast_p_offset(p, offset, x.size) and type(seed) is int and 0 <= seed < STREAM_END
            and (mask_format is None or (type(mask_format) is str and mask_format in MASK_FORMATS))
            and _fast_out(out, x))


def fast_backward_ok(grad_y, p, mask, seed, offset, out, noise_shape) -> bool:
    """The backward counterpart: a stored ``mask`` (C-contiguous, bool of ``grad_y``'s shape or
    the packed bits) or a ``seed`` to regenerate it from."""
    if not (noise_shape is None and _fast_array(grad_y) and _fast_p_offset(p, offset, grad_y.size)):
        return False
    if seed is not None and not (type(seed) is int and 0 <= seed < STREAM_END):
        return False
    if mask is None:
        return seed is not None and _fast_out(out, grad_y)
    if type(mask) is not np.ndarray or not mask.flags.c_contiguous:
        return False
    if mask.dtype == np.bool_:
        if mask.shape != grad_y.shape:
            return False
    elif mask.dtype != np.uint8 or mask.shape != (n_mask_bytes(grad_y.size),):
        return False
    return _fast_out(out, grad_y, mask)


def numpy_forward_args(x, p, seed, offset, training, mask_format, out, noise_shape=None):
    """A NumPy backend's forward arguments, checked: ``(x, call, out_view)`` with ``x`` a
    base-class view and ``out_view`` the base-class view to write into (or None)."""
    x = as_numpy(x, "x")
    call = forward_call(x.dtype, x.shape, p, seed, offset, training, mask_format, noise_shape)
    return x, call, check_out(out, x)


def numpy_backward_args(grad_y, p, mask, seed, offset, out, noise_shape=None):
    """A NumPy backend's backward arguments, checked: ``(g, call, mask, fmt, out_view)``;
    ``mask`` a base-class view and ``fmt`` its format, or both None (regenerate)."""
    g = as_numpy(grad_y, "grad_y")
    call = backward_call(g.dtype, g.shape, p, mask, seed, offset, noise_shape)
    fmt = None
    if mask is not None:
        mask, fmt = as_mask_array(mask, call)
    return g, call, mask, fmt, check_out(out, g, "out", mask)
