"""What only the Numba CPU backend has: threads and tiles."""

from __future__ import annotations

import numba
import numpy as np
import pytest

import reference
from kernels import cpu
from tests.inputs import assert_same_bits


@pytest.mark.parametrize("fmt", ["bool", "bits", None])
def test_result_does_not_depend_on_the_thread_count(fmt):
    x = np.random.default_rng(0).standard_normal(20 * cpu.TILE + 13).astype(np.float32)
    saved = numba.get_num_threads()
    results = []
    try:
        for threads in sorted({1, 2, saved}):
            numba.set_num_threads(threads)
            results.append(cpu.dropout_forward(x, 0.3, seed=77, offset=5, mask_format=fmt))
            results.append((cpu.dropout_backward(x, 0.3, seed=77, offset=5), None))
    finally:
        numba.set_num_threads(saved)
    for y, m in results[2::2]:
        assert_same_bits(y, results[0][0])
        if fmt is not None:
            assert_same_bits(m, results[0][1])
    y_ref, _ = reference.dropout_forward(x, 0.3, seed=77, offset=5, mask_format=fmt)
    assert_same_bits(results[0][0], y_ref)


@pytest.mark.slow
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_large_tensor_matches_reference(dtype):
    n = 2**24 + 3
    x = np.random.default_rng(1).standard_normal(n).astype(dtype)
    for fmt in ("bits", None):
        y_ref, m_ref = reference.dropout_forward(x, 0.5, seed=3, offset=2**33 + 1, mask_format=fmt)
        y, m = cpu.dropout_forward(x, 0.5, seed=3, offset=2**33 + 1, mask_format=fmt)
        assert_same_bits(y, y_ref)
        if fmt:
            assert_same_bits(m, m_ref)
