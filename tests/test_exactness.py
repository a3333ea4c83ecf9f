"""Every backend against the NumPy reference, bit for bit (docs/RNG_STREAM.md)."""

from __future__ import annotations

import numpy as np
import pytest

import reference
from reference.half import compute_dtype
from reference.stream import scale_for
from tests.inputs import BIG, CASE_IDS, DTYPES, P_VALUES, assert_same_bits, get_case, poisoned_like, specials

SEED = 0x1234_5678_9ABC_DEF0  # both key words non-zero


def _unchanged(a):
    """A copy to compare with afterwards: no backend may modify its inputs."""
    return np.array(a, copy=True)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("cid", CASE_IDS)
def test_forward_matches_reference(kernel, cid, dtype):
    x = get_case(cid, dtype)
    x_before = _unchanged(x)
    for p in P_VALUES:
        for fmt in ("bool", "bits", None):
            offset = 3 if fmt == "bits" else 0  # a start mid-block, mid-byte
            y_ref, m_ref = reference.dropout_forward(x, p, seed=SEED, offset=offset, mask_format=fmt)
            y, m = kernel.dropout_forward(x, p, seed=SEED, offset=offset, mask_format=fmt)
            assert_same_bits(y, y_ref)
            if fmt is None:
                assert m is None
            else:
                assert_same_bits(m, m_ref)
    assert_same_bits(x, x_before)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("cid", ["nbig", "7x13.T", "nbig[::3]", "0d"])
def test_backward_matches_reference_in_every_mask_format(kernel, cid, dtype):
    x = get_case(cid, dtype)
    dy = get_case(cid, dtype)[...] * dtype(3)
    dy_before = _unchanged(dy)
    p, offset = 0.3, 5
    _, m_bool = reference.dropout_forward(x, p, seed=SEED, offset=offset, mask_format="bool")
    w = compute_dtype(dtype)  # the contract: float32 arithmetic for the 16-bit formats, one rounding
    expected = ((dy.astype(w) * m_bool.astype(w)) * scale_for(p, w)).astype(dtype)
    _, m_bits = kernel.dropout_forward(x, p, seed=SEED, offset=offset, mask_format="bits")
    _, m_bool_k = kernel.dropout_forward(x, p, seed=SEED, offset=offset, mask_format="bool")
    for dx in (
        kernel.dropout_backward(dy, p, mask=m_bool_k),
        kernel.dropout_backward(dy, p, mask=m_bits),
        kernel.dropout_backward(dy, p, seed=SEED, offset=offset),
        reference.dropout_backward(dy, p, seed=SEED, offset=offset),
    ):
        assert_same_bits(dx, expected)
    assert_same_bits(dy, dy_before)


# inf * 0 and max * 2 are the IEEE answers the test asks for; the CUDA simulator, which
# evaluates kernels with NumPy scalars, warns about them.
@pytest.mark.filterwarnings("ignore:overflow encountered in scalar multiply:RuntimeWarning")
@pytest.mark.filterwarnings("ignore:invalid value encountered in scalar multiply:RuntimeWarning")
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_special_values(kernel, dtype):
    """NaN stays NaN whether kept or dropped; a dropped inf becomes NaN; zeros keep their sign."""
    x = specials(dtype)
    for p in (0.0, 0.5, 1.0):
        y_ref, m_ref = reference.dropout_forward(x, p, seed=SEED)
        y, m = kernel.dropout_forward(x, p, seed=SEED)
        assert_same_bits(y, y_ref)
        assert_same_bits(m, m_ref)
        assert np.isnan(y[np.isnan(x)]).all()
        assert np.isnan(y[np.isinf(x) & ~m]).all()


def test_split_tensor_with_offsets_matches_whole(backend):
    """A tensor cut in two, the second half at offset = len(first), keeps the same elements."""
    x = get_case("nbig", np.float32)
    for cut in (1, 2, 3, 8, 100, x.size - 1):
        y_all, m_all = backend.dropout_forward(x, 0.5, seed=SEED, offset=7)
        y1, m1 = backend.dropout_forward(x[:cut], 0.5, seed=SEED, offset=7)
        y2, m2 = backend.dropout_forward(x[cut:], 0.5, seed=SEED, offset=7 + cut)
        assert_same_bits(np.concatenate([m1, m2]), m_all)
        assert_same_bits(np.concatenate([y1, y2]), y_all)


def test_huge_offset_and_seed_words(kernel):
    """Counters past 2**32 blocks and seeds with a high key word use all 64 bits."""
    x = get_case("n127", np.float64)
    for seed, offset in ((2**64 - 1, 2**64 - 127), (2**32, 2**34 + 1), (1, 2**63 - 3)):
        y_ref, m_ref = reference.dropout_forward(x, 0.5, seed=seed, offset=offset, mask_format="bits")
        y, m = kernel.dropout_forward(x, 0.5, seed=seed, offset=offset, mask_format="bits")
        assert_same_bits(y, y_ref)
        assert_same_bits(m, m_ref)


@pytest.mark.parametrize("fmt", ["bool", "bits", None])
def test_outputs_poisoned_before_the_call_are_fully_written(kernel, fmt):
    x = get_case("nbig", np.float32)
    y_ref, _ = reference.dropout_forward(x, 0.5, seed=SEED, mask_format=fmt)
    out = poisoned_like(x)
    y, _ = kernel.dropout_forward(x, 0.5, seed=SEED, mask_format=fmt, out=out)
    assert y is out
    assert_same_bits(out, y_ref)
    dx_out = poisoned_like(x)
    dx = kernel.dropout_backward(x, 0.5, seed=SEED, out=dx_out)
    assert dx is dx_out
    assert_same_bits(dx_out, y_ref)


def test_bits_mask_padding_is_zero(kernel):
    """The unused high bits of the last byte are 0, as np.packbits writes them."""
    for n in (1, 3, 9, BIG):
        x = np.ones(n, dtype=np.float32)
        _, m = kernel.dropout_forward(x, 0.0, seed=SEED, mask_format="bits")
        assert m[-1] == (1 << (n % 8 or 8)) - 1


def test_backward_is_the_adjoint_of_forward(backend):
    """<dy, f(x)> == <b(dy), x> for the same mask."""
    rng = np.random.default_rng(5)
    x, dy = rng.standard_normal((2, 33, 31))
    y, m = backend.dropout_forward(x, 0.25, seed=SEED)
    dx = backend.dropout_backward(dy, 0.25, mask=m)
    assert np.vdot(dy, y) == pytest.approx(np.vdot(dx, x), rel=1e-13)
    assert np.vdot(dy, y) != pytest.approx(np.vdot(dy, x), rel=1e-3)  # the check has teeth


def test_p_zero_keeps_all_and_p_one_drops_all(backend):
    x = get_case("7x13", np.float32)
    y, m = backend.dropout_forward(x, 0.0, seed=SEED)
    assert m.all()
    assert_same_bits(y, x)
    y, m = backend.dropout_forward(x, 1.0, seed=SEED)
    assert not m.any()
    assert not np.isnan(y).any()
    assert_same_bits(y, np.copysign(np.zeros_like(x), x))


_DRAWS = {"reference": "stream_words", "cpu": "_regen", "cuda": "_launch_kernel"}


def test_eval_mode_is_the_identity_and_draws_nothing(backend, monkeypatch):
    def no_draw(*args, **kwargs):
        raise AssertionError("evaluation mode drew random words")

    monkeypatch.setattr(backend, _DRAWS[backend.NAME], no_draw)
    x = get_case("3x5x7.T", np.float64)
    for fmt in ("bool", "bits", None):
        y, m = backend.dropout_forward(x, 0.5, seed=SEED, training=False, mask_format=fmt)
        assert m is None
        assert_same_bits(y, x)
        assert not np.shares_memory(y, x)


def test_same_seed_and_offset_repeat_exactly(backend):
    x = get_case("nbig", np.float32)
    a = backend.dropout_forward(x, 0.5, seed=9, offset=11)
    b = backend.dropout_forward(x, 0.5, seed=9, offset=11)
    assert_same_bits(a[0], b[0])
    assert_same_bits(a[1], b[1])
    c = backend.dropout_forward(x, 0.5, seed=10, offset=11)
    assert not np.array_equal(a[1], c[1])


def test_threshold_comparison_is_strict(backend):
    """A word equal to the threshold is dropped, one below it is kept (u < t, not u <= t).

    p is chosen so that t = floor((1 - p) 2**32) lands exactly on an element's own word.
    """
    seed, offset = 2024, 6
    words = reference.stream_words(8, seed, offset)
    x = np.ones(8, dtype=np.float64)
    for i, u in enumerate(words.astype(np.int64)):
        if u == 0:
            continue
        _, m = backend.dropout_forward(x, 1 - u / 2**32, seed=seed, offset=offset)
        assert not m[i], f"element {i}: word == threshold must be dropped"
        _, m = backend.dropout_forward(x, 1 - (u + 1) / 2**32, seed=seed, offset=offset)
        assert m[i], f"element {i}: word == threshold - 1 must be kept"
