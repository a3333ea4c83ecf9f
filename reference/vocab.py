"""The suite's vocabulary, spelled once: mask formats, dtype names, the CUDA simulator, the
default seeds and p values. docs/GLOSSARY.md defines the words.

A leaf: it imports nothing of the project, and never ``ml_dtypes`` until a bfloat16 array
has to be made (a caller that holds one has imported ``ml_dtypes`` already).
"""

from __future__ import annotations

import os
import sys

import numpy as np

#: Stored masks: "bool" (one bool per mask element, PyTorch's layout) or "bits" (uint8, the
#: ``np.packbits(mask.ravel(), bitorder="little")`` layout). None means "no mask kept".
STORED_MASK_FORMATS = ("bool", "bits")
#: What ``mask_format=`` accepts.
MASK_FORMATS = (*STORED_MASK_FORMATS, None)

#: The dtype names, wide formats first; the 16-bit ones compute in float32 and round once.
WIDE_DTYPES = ("float32", "float64")
HALF_DTYPES = ("float16", "bfloat16")
DTYPES = WIDE_DTYPES + HALF_DTYPES
DTYPE_NAMES_TEXT = "float16, bfloat16, float32 or float64"

#: Seeds with both 32-bit key words non-zero, and the p values where the contract's edges lie.
DEFAULT_SEED = 0x1234_5678_9ABC_DEF0
EDGE_P_VALUES = (0.0, 1e-7, 0.1, 0.5, 0.9, 1 - 1e-7, 1.0)

CUDASIM_ENV = "NUMBA_ENABLE_CUDASIM"


def bfloat16_dtype() -> np.dtype:
    """``ml_dtypes.bfloat16`` as a NumPy dtype (imports ml_dtypes: only to make such an array)."""
    import ml_dtypes

    return np.dtype(ml_dtypes.bfloat16)


def is_bfloat16(dtype) -> bool:
    """True for ml_dtypes' bfloat16, without importing ml_dtypes: an array of that dtype
    exists only once ml_dtypes is imported."""
    ml = sys.modules.get("ml_dtypes")
    return ml is not None and np.dtype(dtype).type is ml.bfloat16


def is_float16(dtype) -> bool:
    return np.dtype(dtype) == np.float16


def is_float_dtype(dtype) -> bool:
    """One of the four dtypes the kernels take (any byte order: callers check that apart)."""
    dtype = np.dtype(dtype)
    return (dtype.kind == "f" and dtype.itemsize in (2, 4, 8)) or is_bfloat16(dtype)


def np_dtype(name) -> np.dtype:
    """The NumPy dtype of a dtype name (or dtype); ``"bfloat16"`` is ``ml_dtypes.bfloat16``."""
    if isinstance(name, str) and name == "bfloat16":
        return bfloat16_dtype()
    return np.dtype(name)


def dtype_name(dtype) -> str:
    """The vocabulary's name of a NumPy dtype ("float32", "bfloat16", ...)."""
    return "bfloat16" if is_bfloat16(dtype) else np.dtype(dtype).name


def cuda_simulated() -> bool:
    """Whether numba.cuda is (or will be, once imported) the CUDA simulator. Numba reads the
    variable when it is first imported, so its own setting wins once it is."""
    config = getattr(sys.modules.get("numba.core.config"), "ENABLE_CUDASIM", None)
    if config is not None:
        return bool(config)
    return os.environ.get(CUDASIM_ENV, "0") not in ("", "0")
