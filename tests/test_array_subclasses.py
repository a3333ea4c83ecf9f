"""Array subclasses never reach a kernel with their own semantics (np.matrix once made the CPU
kernel write past its buffer), and a masked array is refused rather than its mask ignored."""

from __future__ import annotations

import numpy as np
import pytest

import reference
from tests.inputs import assert_same_bits

pytestmark = pytest.mark.filterwarnings("ignore:the matrix subclass:PendingDeprecationWarning")

SHAPE = (4, 9)
P, SEED = 0.4, 11


class Hostile(np.ndarray):
    """A subclass whose shape methods lie: a backend must work on base-class views."""

    def reshape(self, *args, **kwargs):
        raise AssertionError("a subclass's reshape reached the backend")

    def ravel(self, *args, **kwargs):
        raise AssertionError("a subclass's ravel reached the backend")


def _as(kind, a, tmp_path, name):
    if kind == "matrix":
        return np.asmatrix(a)
    if kind == "hostile":
        return a.copy().view(Hostile)
    if kind == "memmap":
        m = np.memmap(tmp_path / f"{name}.dat", dtype=a.dtype, mode="w+", shape=a.shape)
        m[...] = a
        return m
    raise AssertionError(kind)


def _x():
    return np.random.default_rng(3).standard_normal(SHAPE).astype(np.float32)


KINDS = ["matrix", "hostile", "memmap"]


@pytest.mark.parametrize("kind", KINDS)
def test_subclass_as_x_and_grad(backend, kind, tmp_path):
    x = _x()
    y_ref, m_ref = reference.dropout_forward(x, P, seed=SEED, mask_format="bool")
    xs = _as(kind, x, tmp_path, "x")
    y, m = backend.dropout_forward(xs, P, seed=SEED, mask_format="bool")
    assert type(y) is np.ndarray
    assert_same_bits(y, y_ref)
    assert_same_bits(m, m_ref)
    assert_same_bits(backend.dropout_backward(xs, P, seed=SEED), reference.dropout_backward(x, P, seed=SEED))
    np.testing.assert_array_equal(np.asarray(xs), x)  # the input is untouched


@pytest.mark.parametrize("kind", KINDS)
def test_subclass_as_out(backend, kind, tmp_path):
    x = _x()
    y_ref, _ = reference.dropout_forward(x, P, seed=SEED, mask_format=None)
    out = _as(kind, np.full(SHAPE, np.nan, np.float32), tmp_path, "out")
    y, _ = backend.dropout_forward(x, P, seed=SEED, mask_format=None, out=out)
    assert y is out  # the caller's object comes back, as with NumPy's out=
    assert_same_bits(np.asarray(out), y_ref)
    out2 = _as(kind, np.full(SHAPE, np.nan, np.float32), tmp_path, "out2")
    dx = backend.dropout_backward(x, P, seed=SEED, out=out2)
    assert dx is out2
    assert_same_bits(np.asarray(out2), reference.dropout_backward(x, P, seed=SEED))


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("fmt", ["bool", "bits"])
def test_subclass_as_mask(backend, kind, fmt, tmp_path):
    x = _x()
    _, m = reference.dropout_forward(x, P, seed=SEED, mask_format=fmt)
    ms = _as(kind, m, tmp_path, "mask")
    if fmt == "bits" and kind == "matrix":  # a matrix is always 2-D: (1, n) is not the bits layout
        with pytest.raises(ValueError, match="mask of dtype uint8"):
            backend.dropout_backward(x, P, mask=ms)
        return
    assert_same_bits(backend.dropout_backward(x, P, mask=ms), reference.dropout_backward(x, P, mask=m))


@pytest.mark.parametrize("role", ["x", "out", "mask"])
def test_masked_array_is_refused(backend, role):
    x = _x()
    _, m = reference.dropout_forward(x, P, seed=SEED, mask_format="bool")
    masked = np.ma.masked_array(x.copy(), mask=x < 0)
    before = masked.data.copy()
    with pytest.raises(TypeError, match=f"{role} is a masked array"):
        if role == "x":
            backend.dropout_forward(masked, P, seed=SEED)
        elif role == "out":
            backend.dropout_forward(x, P, seed=SEED, out=masked)
        else:
            backend.dropout_backward(x, P, mask=np.ma.masked_array(m, mask=~m))
    np.testing.assert_array_equal(masked.data, before)
