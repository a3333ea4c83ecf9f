"""The fast front end (validate.fast_forward_ok / fast_backward_ok and the CPU backend's path
behind them): it accepts only calls the general sequence accepts unchanged, and what it
computes is bit for bit what the general path computes."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from kernels import cpu
from reference import validate as v
from tests.inputs import assert_same_bits

DTYPES = ("float32", "float64", "float16", "bfloat16")


class _Sub(np.ndarray):
    """A subclass: the general path takes it as a base-class view, the fast path not at all."""


def _x(n, dtype="float32", shape=None):
    from reference.vocab import np_dtype

    x = np.linspace(-3, 3, n).astype(np_dtype(dtype))
    return x.reshape(shape) if shape else x


def _forward_cases():
    x = _x(37)
    x2 = _x(12, shape=(3, 4))
    good = dict(x=x, p=0.5, seed=1, offset=0, training=True, mask_format="bool", out=None, noise_shape=None)
    variants = [
        {}, dict(mask_format=None), dict(mask_format="bits"), dict(out=np.empty_like(x)), dict(out=x),
        dict(p=0.0), dict(p=1.0), dict(offset=2**64 - 37), dict(seed=2**64 - 1), dict(x=x2, out=np.empty_like(x2)),
        # each of these must fall to the general path (valid or not)
        dict(p=np.float32(0.5)), dict(p=1), dict(p=1.5), dict(p=float("nan")), dict(seed=np.uint64(1)),
        dict(seed=-1), dict(seed=2**64), dict(seed=True), dict(offset=2**64 - 36), dict(offset=-1),
        dict(training=False), dict(training=np.True_), dict(training=1), dict(mask_format="BOOL"),
        dict(mask_format=["bool"]), dict(noise_shape=(37,)), dict(x=x[::2]), dict(x=x2.T),
        dict(x=x.astype(">f4")), dict(x=x.astype(np.int32)), dict(x=np.empty(0, np.float32)),
        dict(x=x2.view(_Sub)), dict(x=list(x)), dict(out=np.empty(37, np.float64)), dict(out=np.empty(36, np.float32)),
        dict(out=x.copy()[::-1]), dict(out=x[:]), dict(out=np.empty_like(x2)),
        dict(out=np.lib.stride_tricks.as_strided(np.zeros(1, np.float32), (37,), (0,))),
    ]
    buf = np.linspace(-1, 1, 38, dtype=np.float32)
    variants.append(dict(x=buf[:37], out=buf[1:]))  # overlapping by all but one element
    ro = np.empty_like(x)
    ro.flags.writeable = False
    variants.append(dict(out=ro))
    return [{**good, **d} for d in variants]


def _general_forward(a):
    """The general path's verdict: (x view, Call, out view) or the exception it raises."""
    try:
        return v.numpy_forward_args(a["x"], a["p"], a["seed"], a["offset"], a["training"], a["mask_format"],
                                    a["out"], a["noise_shape"])
    except (TypeError, ValueError) as e:
        return e


@pytest.mark.parametrize("case", range(len(_forward_cases())))
def test_fast_forward_accepts_only_what_the_general_path_takes_unchanged(case):
    a = _forward_cases()[case]
    v.check_float_dtype(np.float32, "x")  # the fast path knows a dtype once it has been accepted
    fast = v.fast_forward_ok(**a)
    general = _general_forward(a)
    if fast:
        assert not isinstance(general, Exception), f"fast path accepted what the general path refuses: {general}"
        x, call, out = general
        assert x is a["x"] and call.p == a["p"] and call.seed == a["seed"] and call.offset == a["offset"]
        assert (out is None) == (a["out"] is None)
        assert out is None or np.shares_memory(out, a["out"])


def test_fast_forward_takes_the_common_calls():
    """The calls a training loop makes do take the fast path (else it would cost nothing to
    break it unnoticed)."""
    x = _x(256)
    cpu.dropout_forward(x, 0.5, seed=1)  # the dtype is then known
    for fmt, out in itertools.product(("bool", "bits", None), (None, np.empty_like(x), x.copy())):
        assert v.fast_forward_ok(x, 0.5, 7, 0, True, fmt, out, None)
    assert v.fast_forward_ok(x, 0.5, 7, 0, True, None, x, None)  # in place


def test_fast_backward_accepts_only_what_the_general_path_takes_unchanged():
    g = _x(37)
    _, mb = cpu.dropout_forward(g, 0.5, seed=1)
    _, bits = cpu.dropout_forward(g, 0.5, seed=1, mask_format="bits")
    cases = [dict(mask=mb), dict(mask=bits), dict(mask=None, seed=3), dict(mask=mb, seed=3), dict(mask=mb, out=g),
             dict(mask=None, seed=3, out=np.empty_like(g)),
             dict(mask=mb.astype(np.uint8)), dict(mask=mb[::-1]), dict(mask=bits[:-1]), dict(mask=list(mb)),
             dict(mask=None), dict(mask=mb, seed=-1), dict(mask=mb, out=mb.view(np.uint8)),
             dict(mask=mb, offset=2**64), dict(mask=None, seed=3, noise_shape=(1,))]
    for d in cases:
        a = {**dict(grad_y=g, p=0.5, mask=None, seed=None, offset=0, out=None, noise_shape=None), **d}
        fast = v.fast_backward_ok(**a)
        try:
            v.numpy_backward_args(**a)
            accepted = True
        except (TypeError, ValueError):
            accepted = False
        assert accepted or not fast, f"fast path accepted a call the general path refuses: {d}"
    assert v.fast_backward_ok(g, 0.5, mb, None, 0, None, None)
    assert v.fast_backward_ok(g, 0.5, bits, None, 0, g, None)
    assert v.fast_backward_ok(g, 0.5, None, 5, 0, None, None)


@pytest.fixture
def general_only(monkeypatch):
    """Run the CPU backend with the fast path switched off."""
    def run(fn, *args, **kwargs):
        with monkeypatch.context() as m:
            m.setattr(v, "fast_forward_ok", lambda *a: False)
            m.setattr(v, "fast_backward_ok", lambda *a: False)
            return fn(*args, **kwargs)
    return run


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [1, 3, 256, 4097, 1 << 14])
def test_fast_path_is_bit_identical_to_the_general_path(general_only, dtype, n):
    x = _x(n, dtype)
    for fmt, p, offset in [("bool", 0.5, 0), ("bits", 0.3, 5), (None, 0.0, 2**40), ("bool", 1.0, 3)]:
        y_fast, m_fast = cpu.dropout_forward(x, p, seed=11, offset=offset, mask_format=fmt)
        y_gen, m_gen = general_only(cpu.dropout_forward, x, p, seed=11, offset=offset, mask_format=fmt)
        assert_same_bits(y_fast, y_gen)
        if fmt is not None:
            np.testing.assert_array_equal(m_fast, m_gen)
        for mask, seed in [(m_gen, None), (None, 11)] if fmt is not None else [(None, 11)]:
            g_fast = cpu.dropout_backward(x, p, mask=mask, seed=seed, offset=offset)
            g_gen = general_only(cpu.dropout_backward, x, p, mask=mask, seed=seed, offset=offset)
            assert_same_bits(g_fast, g_gen)


def test_fast_path_out_and_in_place(general_only):
    x = _x(4097)
    ref_y, ref_m = general_only(cpu.dropout_forward, x, 0.5, seed=2)
    out = np.full_like(x, np.nan)  # poisoned
    y, m = cpu.dropout_forward(x, 0.5, seed=2, out=out)
    assert y is out
    assert_same_bits(out, ref_y)
    np.testing.assert_array_equal(m, ref_m)
    work = x.copy()
    y, _ = cpu.dropout_forward(work, 0.5, seed=2, out=work, mask_format=None)
    assert y is work
    assert_same_bits(work, ref_y)
    gx = x.copy()
    dx = cpu.dropout_backward(gx, 0.5, mask=ref_m, out=gx)
    assert dx is gx
    assert_same_bits(gx, general_only(cpu.dropout_backward, x, 0.5, mask=ref_m))
    np.testing.assert_array_equal(x, _x(4097))  # the caller's input untouched
