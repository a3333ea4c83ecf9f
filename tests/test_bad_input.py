"""Bad input gets a clear error naming the argument, and leaves the caller's arrays alone."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

X = np.linspace(-1, 1, 37, dtype=np.float32)


def _fwd(backend, x=None, p=0.5, **kw):
    kw.setdefault("seed", 1)
    return backend.dropout_forward(X.copy() if x is None else x, p, **kw)


def _expect(exc, match, fn, *arrays):
    before = [np.array(a, copy=True) for a in arrays]
    with pytest.raises(exc, match=match):
        fn()
    for a, b in zip(arrays, before):
        np.testing.assert_array_equal(a, b)  # nothing written, even on the way to the error


@pytest.mark.parametrize("p", [-0.1, 1.0000001, float("nan"), float("inf"), -float("inf")])
def test_p_out_of_range(backend, p):
    x = X.copy()
    _expect(ValueError, r"p must be in \[0, 1\]", lambda: backend.dropout_forward(x, p, seed=1), x)
    _expect(ValueError, r"p must be in \[0, 1\]", lambda: backend.dropout_backward(x, p, seed=1), x)


@pytest.mark.parametrize("p", ["0.5", None, True, 0.5j, np.array([0.5])])
def test_p_not_a_real_number(backend, p):
    _expect(TypeError, "p must be a real number", lambda: _fwd(backend, p=p))


@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.bool_, np.complex64, object, np.uint8, np.uint16,
                                   np.longdouble])
def test_x_dtype_not_a_float_format(backend, dtype):
    x = np.ones(5, dtype=dtype)
    _expect(TypeError, "x must have dtype float16, bfloat16, float32 or float64",
            lambda: backend.dropout_forward(x, 0.5, seed=1), x)
    _expect(TypeError, "grad_y must have dtype float16, bfloat16, float32 or float64",
            lambda: backend.dropout_backward(x, 0.5, seed=1), x)


@pytest.mark.parametrize("name", ["seed", "offset"])
@pytest.mark.parametrize("value,exc", [(-1, ValueError), (2**64, ValueError), (1.5, TypeError),
                                        ("3", TypeError), (True, TypeError)])
def test_seed_and_offset_range(backend, name, value, exc):
    kw = {"seed": 1, "offset": 0, name: value}
    x = X.copy()
    _expect(exc, name, lambda: backend.dropout_forward(x, 0.5, **kw), x)
    _expect(exc, name, lambda: backend.dropout_backward(x, 0.5, **kw), x)


def test_forward_needs_a_seed(backend):
    _expect(TypeError, "seed", lambda: _fwd(backend, seed=None))


def test_offset_past_the_end_of_the_stream(backend):
    x = X.copy()
    backend.dropout_forward(x, 0.5, seed=1, offset=2**64 - x.size)  # the last position fits
    _expect(ValueError, r"offset \+ x.size must be <= 2\*\*64",
            lambda: backend.dropout_forward(x, 0.5, seed=1, offset=2**64 - x.size + 1), x)


def test_mask_format_unknown(backend):
    _expect(ValueError, "mask_format must be one of", lambda: _fwd(backend, mask_format="packed"))


def test_training_not_bool(backend):
    _expect(TypeError, "training must be a bool", lambda: _fwd(backend, training="yes"))


def test_backward_with_neither_mask_nor_seed(backend):
    g = X.copy()
    _expect(ValueError, "needs the forward mask", lambda: backend.dropout_backward(g, 0.5), g)


@pytest.mark.parametrize("mask,exc,match", [
    (np.ones(36, dtype=np.bool_), ValueError, "mask of dtype bool must have the gradient's shape"),
    (np.ones((37, 1), dtype=np.bool_), ValueError, "mask of dtype bool must have the gradient's shape"),
    (np.ones(4, dtype=np.uint8), ValueError, r"length ceil\(size/8\) = 5"),
    (np.ones(6, dtype=np.uint8), ValueError, r"length ceil\(size/8\) = 5"),
    (np.ones(37, dtype=np.int32), TypeError, "mask must have dtype bool"),
    (np.ones(37, dtype=np.float32), TypeError, "mask must have dtype bool"),
    ([True] * 37, TypeError, "mask must be"),
])
def test_mask_wrong_shape_dtype_or_length(backend, mask, exc, match):
    g = X.copy()
    arrays = [g] + ([mask] if isinstance(mask, np.ndarray) else [])
    _expect(exc, match, lambda: backend.dropout_backward(g, 0.5, mask=mask), *arrays)


@pytest.mark.parametrize("make_out,exc,match", [
    (lambda x: np.empty(36, np.float32), ValueError, "out must have shape"),
    (lambda x: np.empty(37, np.float64), ValueError, "out must have shape"),
    (lambda x: x[::-1], ValueError, "out must be the input itself"),
    (lambda x: [0.0] * 37, TypeError, "out must be"),
])
def test_out_wrong_or_overlapping(backend, make_out, exc, match):
    x = X.copy()
    out = make_out(x)
    _expect(exc, match, lambda: backend.dropout_forward(x, 0.5, seed=1, out=out), x)
    _expect(exc, match, lambda: backend.dropout_backward(x, 0.5, seed=1, out=out), x)


def test_backward_out_overlapping_the_gradient(backend):
    g = X.copy()
    _expect(ValueError, "out must be the input itself",
            lambda: backend.dropout_forward(g, 0.5, seed=1, out=g[::-1]), g)  # a view overlaps too
    bits = np.zeros(4, np.uint8)  # the 1-element gradient's mask, and out over the same bytes
    _expect(ValueError, "out must not overlap the mask",
            lambda: backend.dropout_backward(g[:1], 0.5, mask=bits[:1], out=bits.view(np.float32)), g)


def test_p_too_large_for_a_float(backend):
    x = X.copy()
    _expect(ValueError, r"p must be in \[0, 1\]", lambda: backend.dropout_forward(x, 10**400, seed=1), x)


@pytest.mark.parametrize("p", [np.array(0.25), np.float32(0.25), np.array(0.25, dtype=np.float16)])
def test_p_as_numpy_scalar_or_0d_array(backend, p):
    y, m = _fwd(backend, p=p)
    y_float, m_float = _fwd(backend, p=0.25)
    np.testing.assert_array_equal(y, y_float)
    np.testing.assert_array_equal(m, m_float)


@pytest.mark.parametrize("fmt", [np.array("bits"), b"bits", ["bits"]])
def test_mask_format_not_a_string(backend, fmt):
    _expect(TypeError, "mask_format must be 'bool', 'bits' or None", lambda: _fwd(backend, mask_format=fmt))


@pytest.mark.parametrize("kw,exc,match", [
    ({"seed": 2**64}, ValueError, "seed must be in"),
    ({"seed": "1"}, TypeError, "seed must be an integer"),
    ({"seed": 1, "offset": -1}, ValueError, "offset must be in"),
    ({"offset": 2**70}, ValueError, "offset must be in"),
    ({"offset": 0.5}, TypeError, "offset must be an integer"),
])
def test_backward_with_a_mask_still_checks_seed_and_offset(backend, kw, exc, match):
    """Every backend checks a given seed and offset the same way, even when the mask is used."""
    g = X.copy()
    _, m = _fwd(backend)
    _expect(exc, match, lambda: backend.dropout_backward(g, 0.5, mask=m, **kw), g)


@pytest.mark.parametrize("dtype", [">f4", ">f8"])
def test_non_native_byte_order_is_named(backend, dtype):
    x = X.astype(dtype)
    _expect(TypeError, "x has non-native byte order", lambda: backend.dropout_forward(x, 0.5, seed=1), x)
    _expect(TypeError, "grad_y has non-native byte order", lambda: backend.dropout_backward(x, 0.5, seed=1), x)


def test_inf_and_nan_inputs_raise_no_warnings(backend):
    """inf * 0 = NaN and max * scale = inf are the contract's answers, not events to warn about."""
    x = np.array([np.inf, -np.inf, np.nan, 3e38, -3e38, 1.0] * 6, dtype=np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y, m = backend.dropout_forward(x, 0.5, seed=1)
        backend.dropout_backward(x, 0.5, mask=m)
        backend.dropout_backward(x, 0.5, seed=1)
    assert np.isnan(y[~m & ~np.isfinite(x)]).all()
