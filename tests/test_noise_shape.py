"""Structured dropout: ``noise_shape`` on every backend, bit for bit (docs/RNG_STREAM.md)."""

from __future__ import annotations

import itertools

import ml_dtypes
import numpy as np
import pytest
from scipy import stats

import reference
from reference import noise
from reference.dropout import keep_mask
from reference.half import compute_dtype
from reference.stream import scale_for
from tests.inputs import SIMULATED, assert_same_bits

SEED = 2**40 + 77  # both key words non-zero
SHAPES = [(3, 5), (2, 3, 5), (2, 3, 1, 5)] if SIMULATED else [(3, 5), (7, 1, 13), (2, 3, 4, 5), (5, 3, 2, 7)]


def _every_noise_shape(shape):
    """Each axis shared (1) or independent, all 2^ndim combinations."""
    for shared in itertools.product((False, True), repeat=len(shape)):
        yield tuple(1 if s else n for s, n in zip(shared, shape))


def _by_hand(x, p, seed, offset, noise_shape):
    """The contract restated: M from the stream in noise_shape's C order, broadcast, float32
    arithmetic for 16-bit formats, one rounding."""
    m = keep_mask(noise_shape, p, seed, offset)
    w = compute_dtype(x.dtype)
    return ((x.astype(w) * m.astype(w)) * scale_for(p, w)).astype(x.dtype), m


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_reference_is_the_contract(shape):
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    for ns in _every_noise_shape(shape):
        y, m = reference.dropout_forward(x, 0.4, seed=SEED, offset=3, noise_shape=ns)
        y_hand, m_hand = _by_hand(x, 0.4, SEED, 3, ns)
        assert_same_bits(y, y_hand)
        assert_same_bits(m, m_hand)


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_every_axis_shared_or_not_matches_reference(kernel, shape):
    x = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    for ns in _every_noise_shape(shape):
        for fmt in ("bool", "bits", None):
            y_ref, m_ref = reference.dropout_forward(x, 0.3, seed=SEED, offset=5, mask_format=fmt, noise_shape=ns)
            y, m = kernel.dropout_forward(x, 0.3, seed=SEED, offset=5, mask_format=fmt, noise_shape=ns)
            assert_same_bits(y, y_ref)
            if fmt:
                assert_same_bits(m, m_ref)
                assert_same_bits(kernel.dropout_backward(x, 0.3, mask=m, noise_shape=ns),
                                 reference.dropout_backward(x, 0.3, mask=m_ref, noise_shape=ns))
        assert_same_bits(kernel.dropout_backward(x, 0.3, seed=SEED, offset=5, noise_shape=ns),
                         reference.dropout_backward(x, 0.3, seed=SEED, offset=5, noise_shape=ns))


@pytest.mark.parametrize("dtype", [np.float64, np.float16, ml_dtypes.bfloat16], ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("p", [0.0, 0.5, 1.0])
def test_dtypes_and_extreme_p(kernel, dtype, p):
    x = (np.random.default_rng(2).standard_normal((4, 3, 6)) * 300).astype(dtype)
    x.ravel()[:3] = [np.inf, -np.inf, np.nan]
    for ns in [(4, 3, 1), (1, 3, 6), (4, 1, 1)]:
        y_ref, m_ref = reference.dropout_forward(x, p, seed=SEED, noise_shape=ns)
        y, m = kernel.dropout_forward(x, p, seed=SEED, noise_shape=ns)
        assert_same_bits(y, y_ref)
        assert_same_bits(m, m_ref)


@pytest.mark.parametrize("view", ["T", "F", "slice", "reversed"])
def test_non_contiguous_views(kernel, view):
    a = np.random.default_rng(3).standard_normal((6, 5, 8)).astype(np.float32)
    x = {"T": a.T, "F": np.asfortranarray(a), "slice": a[1:, ::2, 1:7], "reversed": a[::-1, :, ::-2]}[view]
    for ns in [noise.channel(x.shape), (1,) + x.shape[1:], (x.shape[0], 1, x.shape[2])]:
        y_ref, m_ref = reference.dropout_forward(x, 0.5, seed=SEED, offset=2, mask_format="bits", noise_shape=ns)
        y, m = kernel.dropout_forward(x, 0.5, seed=SEED, offset=2, mask_format="bits", noise_shape=ns)
        assert_same_bits(y, y_ref)
        assert_same_bits(m, m_ref)


def test_noise_shape_of_x_shape_is_elementwise(kernel):
    x = np.random.default_rng(4).standard_normal((5, 7)).astype(np.float32)
    for ns in [(5, 7), (None, 7), (None, None)]:
        for fmt in ("bool", "bits"):
            y, m = kernel.dropout_forward(x, 0.5, seed=SEED, offset=1, mask_format=fmt, noise_shape=ns)
            y0, m0 = kernel.dropout_forward(x, 0.5, seed=SEED, offset=1, mask_format=fmt)
            assert_same_bits(y, y0)
            assert_same_bits(m, m0)


def test_split_along_a_shared_axis_reuses_the_mask(kernel):
    """(N, T, F) with one mask over time: any split along T uses the same offset."""
    x = np.random.default_rng(5).standard_normal((3, 10, 4)).astype(np.float32)
    ns = noise.shared_over_time(x.shape)
    y, _ = kernel.dropout_forward(x, 0.5, seed=SEED, offset=9, noise_shape=ns)
    y1, _ = kernel.dropout_forward(x[:, :4], 0.5, seed=SEED, offset=9, noise_shape=ns)
    y2, _ = kernel.dropout_forward(x[:, 4:], 0.5, seed=SEED, offset=9, noise_shape=ns)
    assert_same_bits(np.concatenate([y1, y2], axis=1), y)


def test_split_along_the_leading_independent_axis(kernel):
    """The second part starts at offset + the number of mask elements of the first."""
    x = np.random.default_rng(6).standard_normal((6, 3, 5)).astype(np.float32)
    ns = noise.channel(x.shape)
    y, m = kernel.dropout_forward(x, 0.5, seed=SEED, offset=3, noise_shape=ns)
    y1, m1 = kernel.dropout_forward(x[:2], 0.5, seed=SEED, offset=3, noise_shape=noise.channel(x[:2].shape))
    y2, m2 = kernel.dropout_forward(x[2:], 0.5, seed=SEED, offset=3 + m1.size, noise_shape=noise.channel(x[2:].shape))
    assert_same_bits(np.concatenate([y1, y2]), y)
    assert_same_bits(np.concatenate([m1, m2]), m)


def test_channels_are_all_or_nothing(backend):
    x = np.random.default_rng(7).standard_normal((8, 6, 3, 5)).astype(np.float32) + 10  # no zeros
    y, m = backend.dropout_forward(x, 0.5, seed=SEED, noise_shape=noise.channel(x.shape))
    dropped = (y == 0).all(axis=(2, 3))
    kept = (y == x * np.float32(2)).all(axis=(2, 3))
    np.testing.assert_array_equal(dropped, ~m[..., 0, 0])
    np.testing.assert_array_equal(kept, m[..., 0, 0])
    assert dropped.any() and kept.any()


def test_per_sample_drop_path(backend):
    x = np.ones((64, 3, 4), np.float32)
    y, m = backend.dropout_forward(x, 0.25, seed=SEED, noise_shape=noise.per_sample(x.shape))
    assert m.shape == (64, 1, 1)
    np.testing.assert_array_equal(y, np.where(m, np.float32(4 / 3), np.float32(0)) * np.ones_like(x))


@pytest.mark.parametrize("name", ["reference", "cpu"])
def test_keep_rate_per_mask_element(name):
    """One decision per mask element: the number of kept channels is Binomial(channels, 1-p).
    False-alarm rate 1e-6 per run (fixed seed, so deterministic in CI)."""
    import kernels

    x = np.ones((400, 250, 7), np.float32)  # 100,000 channels of 7 elements
    _, m = kernels.BACKENDS[name].dropout_forward(x, 0.3, seed=SEED, noise_shape=noise.channel(x.shape))
    k, n = int(m.sum()), m.size
    assert stats.binomtest(k, n, 0.7).pvalue > 1e-6, (k, n)


@pytest.mark.parametrize("ns,exc,match", [
    ((4, 3), ValueError, r"noise_shape must have one entry per dimension of x \(3\)"),
    ((4, 2, 1), ValueError, r"noise_shape\[1\] must be 1 \(shared\) or x.shape\[1\] = 3, got 2"),
    ((4, 3, -1), ValueError, r"noise_shape\[2\] must be 1"),
    ((4, 3, 1.0), TypeError, r"noise_shape\[2\] must be an int"),
    ((4, True, 1), TypeError, r"noise_shape\[1\] must be an int"),
    ("431", TypeError, "noise_shape must be None or a tuple"),
    (4, TypeError, "noise_shape must be None or a tuple"),
])
def test_bad_noise_shape(backend, ns, exc, match):
    x = np.ones((4, 3, 5), np.float32)
    before = x.copy()
    with pytest.raises(exc, match=match):
        backend.dropout_forward(x, 0.5, seed=1, noise_shape=ns)
    with pytest.raises(exc, match=match):
        backend.dropout_backward(x, 0.5, seed=1, noise_shape=ns)
    np.testing.assert_array_equal(x, before)


def test_stored_mask_must_have_the_noise_shape(backend):
    x = np.ones((4, 3, 5), np.float32)
    _, m = backend.dropout_forward(x, 0.5, seed=1, noise_shape=(4, 3, 1))
    with pytest.raises(ValueError, match=r"mask of dtype bool must have shape noise_shape = \(4, 3, 1\)"):
        backend.dropout_backward(x, 0.5, mask=np.asarray(m).reshape(4, 3), noise_shape=(4, 3, 1))
    with pytest.raises(ValueError, match=r"length ceil\(size/8\) = 2"):
        backend.dropout_backward(x, 0.5, mask=np.zeros(1, np.uint8), noise_shape=(4, 3, 1))


def test_noise_shape_helpers():
    assert noise.channel((8, 3, 32, 32)) == (8, 3, 1, 1)
    assert noise.channel((8, 3, 10)) == (8, 3, 1)
    assert noise.shared_over_time((8, 20, 64)) == (8, 1, 64)
    assert noise.per_sample((8, 3, 32, 32)) == (8, 1, 1, 1)
    with pytest.raises(ValueError, match="channel dropout needs"):
        noise.channel((8,))
