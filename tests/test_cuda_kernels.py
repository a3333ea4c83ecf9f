"""What only the CUDA backend has: launch shapes, device arrays, hardware-sized tensors."""

from __future__ import annotations

import numpy as np
import pytest

import kernels
import reference
from tests.inputs import BIG, SIMULATED, assert_same_bits

if "cuda" not in kernels.BACKENDS:
    pytest.skip("no GPU and no CUDA simulator", allow_module_level=True)

from numba import cuda  # noqa: E402

from kernels import cuda as gpu  # noqa: E402


def test_launch_shape_does_not_change_a_bit():
    x = np.random.default_rng(0).standard_normal(3 * BIG).astype(np.float32)
    expected = reference.dropout_forward(x, 0.3, seed=5, offset=3, mask_format="bits")
    shapes = ([(32, 4, 1), (64, 8, 2), (32, 12, None)] if SIMULATED else
              [(32, 4, 1), (128, 8, 7), (256, 8, None), (256, 4, None), (512, 16, 3), (1024, 32, None)])
    for tpb, ept, max_blocks in shapes:
        with gpu.launch_config(threads_per_block=tpb, elements_per_thread=ept, max_blocks=max_blocks):
            for fmt in ("bits", "bool"):
                y, m = gpu.dropout_forward(x, 0.3, seed=5, offset=3, mask_format=fmt)
                assert_same_bits(y, expected[0])
                assert_same_bits(m if fmt == "bits" else np.packbits(m, bitorder="little"), expected[1])
            assert_same_bits(gpu.dropout_backward(x, 0.3, seed=5, offset=3), expected[0])


def test_launch_config_rejects_bad_shapes():
    with pytest.raises(ValueError, match="threads_per_block"), gpu.launch_config(threads_per_block=48):
        pass
    with pytest.raises(ValueError, match="elements_per_thread"), gpu.launch_config(elements_per_thread=6):
        pass


def test_device_arrays_stay_on_the_device():
    x = np.random.default_rng(1).standard_normal((7, BIG)).astype(np.float64)
    d_x = cuda.to_device(x)
    d_out = cuda.device_array_like(x)
    y, m = gpu.dropout_forward(d_x, 0.4, seed=8, mask_format="bits", out=d_out)
    assert y is d_out
    assert hasattr(m, "copy_to_host")
    y_ref, m_ref = reference.dropout_forward(x, 0.4, seed=8, mask_format="bits")
    assert_same_bits(d_out.copy_to_host(), y_ref)
    assert_same_bits(m.copy_to_host(), m_ref)
    dx = gpu.dropout_backward(d_x, 0.4, mask=m)  # device mask, device gradient
    assert hasattr(dx, "copy_to_host") and dx.shape == x.shape
    assert_same_bits(dx.copy_to_host(), y_ref)
    y2, m2 = gpu.dropout_forward(d_x, 0.4, seed=8)  # bool mask, fresh output
    assert_same_bits(y2.copy_to_host(), y_ref)
    assert m2.shape == x.shape and m2.dtype == np.bool_


def test_non_contiguous_device_arrays_are_refused():
    d_x = cuda.to_device(np.ones((8, 8), dtype=np.float32))
    with pytest.raises(ValueError, match="x must be C-contiguous on the device"):
        gpu.dropout_forward(d_x[:, ::2], 0.5, seed=1)


def test_device_out_checked():
    d_x = cuda.to_device(np.ones(64, dtype=np.float32))
    with pytest.raises(ValueError, match="out must have shape"):
        gpu.dropout_forward(d_x, 0.5, seed=1, out=cuda.device_array(63, dtype=np.float32))
    d_big = cuda.to_device(np.ones(96, dtype=np.float32))
    with pytest.raises(ValueError, match="out must be the input itself"):
        gpu.dropout_forward(d_big[:64], 0.5, seed=1, out=d_big[32:])
    with pytest.raises(TypeError, match="out must be a device array"):
        gpu.dropout_forward(d_x, 0.5, seed=1, out=np.empty(64, np.float32))


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_device_arrays_in_place_and_half(dtype):
    x = np.random.default_rng(4).standard_normal(97).astype(dtype)
    y_ref, m_ref = reference.dropout_forward(x, 0.3, seed=5, offset=1, mask_format="bits")
    d_x = cuda.to_device(x)
    y, m = gpu.dropout_forward(d_x, 0.3, seed=5, offset=1, mask_format="bits", out=d_x)
    assert y is d_x
    assert_same_bits(d_x.copy_to_host(), y_ref)
    assert_same_bits(m.copy_to_host(), m_ref)
    d_g = cuda.to_device(x)
    dx = gpu.dropout_backward(d_g, 0.3, mask=m, out=d_g)
    assert dx is d_g
    assert_same_bits(d_g.copy_to_host(), reference.dropout_backward(x, 0.3, mask=m_ref))
    y2, _ = gpu.dropout_forward(cuda.to_device(x), 0.3, seed=5, offset=1)
    assert y2.dtype == np.dtype(dtype)
    assert_same_bits(y2.copy_to_host(), y_ref)


@pytest.mark.gpu
@pytest.mark.parametrize("fmt", ["bits", "bool", None])
def test_2_pow_28_elements_match_the_cpu_kernels(fmt):
    """2**28 + 5 float32 elements on the GPU against kernels.cpu (itself bit-equal to the reference)."""
    from kernels import cpu

    n = 2**28 + 5
    x = np.random.default_rng(2).standard_normal(n, dtype=np.float32)
    d_x = cuda.to_device(x)
    y, m = gpu.dropout_forward(d_x, 0.5, seed=2**63 + 11, offset=2**35 + 1, mask_format=fmt)
    y_cpu, m_cpu = cpu.dropout_forward(x, 0.5, seed=2**63 + 11, offset=2**35 + 1, mask_format=fmt)
    assert_same_bits(y.copy_to_host(), y_cpu)
    if fmt is not None:
        assert_same_bits(m.copy_to_host(), m_cpu)
    dx = gpu.dropout_backward(d_x, 0.5, seed=2**63 + 11, offset=2**35 + 1)
    assert_same_bits(dx.copy_to_host(), y_cpu)


@pytest.mark.gpu
def test_2_pow_26_elements_match_the_reference():
    n = 2**26 + 3
    x = np.random.default_rng(3).standard_normal(n).astype(np.float64)
    y, m = gpu.dropout_forward(cuda.to_device(x), 0.1, seed=99, offset=7, mask_format="bits")
    y_ref, m_ref = reference.dropout_forward(x, 0.1, seed=99, offset=7, mask_format="bits")
    assert_same_bits(y.copy_to_host(), y_ref)
    assert_same_bits(m.copy_to_host(), m_ref)
