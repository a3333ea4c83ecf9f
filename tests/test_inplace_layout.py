"""In place (``out=x``, ``out=grad_y``) is bit-identical to out of place, and a new output keeps
the input's memory layout while stream positions follow the logical C order."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest

import reference
from tests.inputs import assert_same_bits

SEED = 2**33 + 5


def _views():
    a = np.random.default_rng(0).standard_normal((6, 5, 8)).astype(np.float32)
    yield "C", a.copy()
    yield "F", np.asfortranarray(a)
    yield "T", a.copy().T
    yield "strided", a.copy()[::2, 1:, ::-3]
    yield "bf16", a.astype(ml_dtypes.bfloat16)


@pytest.mark.parametrize("cid", [c for c, _ in _views()])
@pytest.mark.parametrize("noise", [False, True])
def test_in_place_equals_out_of_place(backend, cid, noise):
    x = dict(_views())[cid]
    ns = (x.shape[0], 1, x.shape[2]) if noise else None
    for fmt in ("bool", "bits", None):
        y_ref, m_ref = reference.dropout_forward(x, 0.4, seed=SEED, offset=1, mask_format=fmt, noise_shape=ns)
        xi = x.copy(order="K")
        if cid == "strided":  # in place on a strided view of a bigger buffer
            base = np.full((6, 5, 8), np.nan, np.float32)
            xi = base[::2, 1:, ::-3]
            xi[...] = x
        y, m = backend.dropout_forward(xi, 0.4, seed=SEED, offset=1, mask_format=fmt, noise_shape=ns, out=xi)
        assert y is xi
        assert_same_bits(xi, y_ref)
        if fmt:
            assert_same_bits(m, m_ref)
            gi = x.copy(order="K")
            dx = backend.dropout_backward(gi, 0.4, mask=m, noise_shape=ns, out=gi)
            assert dx is gi
            assert_same_bits(gi, reference.dropout_backward(x, 0.4, mask=m_ref, noise_shape=ns))
    gi = x.copy(order="K")
    backend.dropout_backward(gi, 0.4, seed=SEED, offset=1, noise_shape=ns, out=gi)
    assert_same_bits(gi, reference.dropout_backward(x, 0.4, seed=SEED, offset=1, noise_shape=ns))
    if cid == "strided":
        assert np.isnan(base[1::2]).all(), "in-place dropout wrote outside the view"


@pytest.mark.parametrize("make", [np.asfortranarray, lambda a: a.transpose(2, 0, 1), lambda a: a.transpose(1, 2, 0)],
                         ids=["F", "transpose201", "transpose120"])
def test_new_output_keeps_the_input_layout(backend, make):
    x = make(np.random.default_rng(1).standard_normal((4, 5, 6)).astype(np.float32))
    y, m = backend.dropout_forward(x, 0.5, seed=SEED)
    assert y.strides == np.empty_like(x).strides  # like-strided: channels-last stays channels-last
    assert_same_bits(y, reference.dropout_forward(np.ascontiguousarray(x), 0.5, seed=SEED)[0])  # C-order positions
    dx = backend.dropout_backward(x, 0.5, mask=m)
    assert dx.strides == y.strides
    assert_same_bits(dx, y)
