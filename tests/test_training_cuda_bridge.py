"""The bridge's device path (kernels/bridge_arrays.py) on a foreign ``__cuda_array_interface__``
object, under the CUDA simulator (torch has no CUDA tensors here): run with
``NUMBA_ENABLE_CUDASIM=1 .venv-cuda/bin/python -m pytest tests/test_training_cuda_bridge.py``.
Skipped cleanly where neither the simulator nor a GPU is present."""

from __future__ import annotations

import numpy as np
import pytest

import kernels
from reference import dropout as ref

if "cuda" not in kernels.BACKENDS:
    pytest.skip("no CUDA backend here (no GPU, no NUMBA_ENABLE_CUDASIM=1)", allow_module_level=True)

from numba import cuda  # noqa: E402

from kernels import bridge_arrays  # noqa: E402
from reference import vocab  # noqa: E402


class Foreign:
    """A stand-in for a torch CUDA tensor: only ``__cuda_array_interface__``, on the memory of a
    device array (under the simulator, host memory it wraps)."""

    def __init__(self, host: np.ndarray):
        self.dev = cuda.to_device(host)
        if vocab.cuda_simulated():
            self._mem = self.dev._ary if hasattr(self.dev, "_ary") else self.dev.copy_to_host()
            self._iface = {"shape": host.shape, "typestr": self._mem.dtype.str, "strides": None,
                           "data": (self._mem.ctypes.data, False), "version": 3}
        else:
            self._iface = self.dev.__cuda_array_interface__

    @property
    def __cuda_array_interface__(self):
        return self._iface

    def host(self) -> np.ndarray:
        return self._mem.copy() if vocab.cuda_simulated() else self.dev.copy_to_host()


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16"])
@pytest.mark.parametrize("mask_format", ["bits", None])
def test_foreign_device_arrays_bit_identical(dtype, mask_format):
    x = np.random.default_rng(1).standard_normal((6, 50)).astype(dtype)
    g = np.random.default_rng(2).standard_normal((6, 50)).astype(dtype)
    fx, fy, fg, fdx = Foreign(x), Foreign(np.zeros_like(x)), Foreign(g), Foreign(np.zeros_like(g))
    mask = bridge_arrays.cuda_forward(fx, 0.3, seed=11, offset=7, out=fy, mask_format=mask_format)
    y_ref, bits = ref.dropout_forward(x, 0.3, seed=11, offset=7, mask_format="bits")
    assert np.array_equal(fy.host().view(np.uint8), y_ref.view(np.uint8))  # written in the stand-in's memory
    if mask_format == "bits":
        assert np.array_equal(mask.copy_to_host().reshape(-1), bits.reshape(-1))
    bridge_arrays.cuda_backward(fg, 0.3, out=fdx, mask=mask, seed=11, offset=7)
    assert np.array_equal(fdx.host().view(np.uint8), ref.dropout_backward(g, 0.3, seed=11, offset=7).view(np.uint8))


def test_bfloat16_travels_as_int16():
    import ml_dtypes

    x = np.random.default_rng(3).standard_normal(64).astype(ml_dtypes.bfloat16)
    fx, fy = Foreign(x.view(np.int16)), Foreign(np.zeros(64, np.int16))
    bridge_arrays.cuda_forward(fx, 0.5, seed=5, offset=0, out=fy, mask_format=None, dtype=ml_dtypes.bfloat16)
    y_ref, _ = ref.dropout_forward(x, 0.5, seed=5)
    assert np.array_equal(fy.host(), y_ref.view(np.int16))


def test_in_place_on_the_foreign_memory():
    x = np.arange(1, 41, dtype=np.float32)
    fx = Foreign(x)
    bridge_arrays.cuda_forward(fx, 0.5, seed=9, offset=3, out=fx, mask_format=None)
    assert np.array_equal(fx.host(), ref.dropout_forward(x, 0.5, seed=9, offset=3)[0])


def test_not_an_array():
    with pytest.raises(TypeError):
        bridge_arrays.device_view(object())
