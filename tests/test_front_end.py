"""The one front end (reference/validate.py, reference/overlap.py): the same checks, in the same
order, with the same messages, on every backend; and the overlap rule of ``out=``."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

import kernels
from reference import dropout as ref
from reference import overlap
from reference import validate as v
from tests.inputs import assert_same_bits

as_strided = np.lib.stride_tricks.as_strided
X = np.linspace(-1, 1, 37, dtype=np.float32)


def _self_overlapping(n=37, dtype=np.float32):
    """A writeable view whose elements all share one address (stride 0)."""
    return as_strided(np.zeros(1, dtype), shape=(n,), strides=(0,))


# --- self-overlapping out --------------------------------------------------------------


@pytest.mark.parametrize("make_out", [
    lambda: _self_overlapping(),
    lambda: as_strided(np.zeros(40, np.float32), shape=(37,), strides=(2,)),  # half an element apart
    lambda: as_strided(np.zeros(64, np.float32), shape=(8, 37), strides=(4, 4)),  # rows one element apart
], ids=["stride0", "half-element", "2d"])
def test_self_overlapping_out_is_refused(backend, make_out):
    out = make_out()
    if out.ndim == 2:
        out = out[0]  # the row alone is a plain view: accepted
        y, _ = backend.dropout_forward(X, 0.5, seed=1, out=out)
        assert_same_bits(np.asarray(y), ref.dropout_forward(X, 0.5, seed=1)[0])
        x2 = np.ones((8, 37), np.float32)
        with pytest.raises(ValueError, match="out overlaps itself"):
            backend.dropout_forward(x2, 0.5, seed=1, out=make_out())
        return
    before = np.array(out, copy=True)
    with pytest.raises(ValueError, match="out overlaps itself"):
        backend.dropout_forward(X, 0.5, seed=1, out=out)
    with pytest.raises(ValueError, match="out overlaps itself"):
        backend.dropout_backward(X, 0.5, seed=1, out=out)
    _, m = ref.dropout_forward(X, 0.5, seed=1, mask_format="bits")
    with pytest.raises(ValueError, match="out overlaps itself"):
        backend.dropout_backward(X, 0.5, mask=m, out=out)
    np.testing.assert_array_equal(out, before)


def test_in_place_on_a_self_overlapping_input_is_refused(backend):
    x = _self_overlapping()
    with pytest.raises(ValueError, match="out overlaps itself"):
        backend.dropout_forward(x, 0.5, seed=1, out=x)
    with pytest.raises(ValueError, match="out overlaps itself"):
        backend.dropout_backward(x, 0.5, seed=1, out=x)
    y, _ = backend.dropout_forward(x, 0.5, seed=1)  # reading such an input is fine
    assert_same_bits(np.asarray(y), ref.dropout_forward(np.array(x), 0.5, seed=1)[0])


# --- high-dimensional strided out: the cheap tests decide ---------------------------------


def _dims17():
    buf = np.zeros((2,) * 17 + (2,), np.float32)  # two interleaved 17-D views of one buffer
    return buf[..., 0], buf[..., 1]


def test_17d_strided_out_apart_from_x(backend):
    a, b = _dims17()
    x = np.random.default_rng(0).standard_normal(a.shape).astype(np.float32)
    y, m = backend.dropout_forward(x, 0.3, seed=7, out=a)
    want_y, want_m = ref.dropout_forward(x, 0.3, seed=7)
    assert_same_bits(np.asarray(a), want_y)
    assert_same_bits(np.asarray(m), want_m)
    b[...] = x  # x and out interleaved in one buffer: extents intersect, elements do not
    backend.dropout_backward(b, 0.3, seed=7, out=a)
    assert_same_bits(np.asarray(a), ref.dropout_backward(x, 0.3, seed=7))
    backend.dropout_forward(b, 0.3, seed=7, out=b)  # in place
    assert_same_bits(np.asarray(b), want_y)


def test_17d_strided_out_overlapping_x_is_refused(backend):
    buf = np.zeros((3,) * 12 + (2,) * 5, np.float32)
    x, out = buf[(slice(0, 2),) * 12], buf[(slice(1, 3),) * 12]
    with pytest.raises(ValueError, match="out must be the input itself"):
        backend.dropout_forward(x, 0.5, seed=1, out=out)


def test_overlap_rule_unit():
    mem = overlap.memory_of
    assert overlap.overlaps_itself(mem(_self_overlapping()))
    # distinct elements that no sorted-stride argument proves distinct: the exact test decides
    interleaved = as_strided(np.zeros(16, np.float32), shape=(3, 3), strides=(8, 12))
    assert not overlap.overlaps_itself(mem(interleaved))
    assert overlap.overlaps_itself(mem(as_strided(np.zeros(16, np.float32), shape=(3, 3), strides=(8, 4))))
    assert not overlap.overlaps_itself(mem(np.zeros((4, 5))[::2, ::-1].T))
    a = np.zeros(10)
    assert overlap.same_memory(mem(a[:, None]), mem(a.reshape(10, 1)))
    assert not overlap.may_share(a[:5], a[5:], mem(a[:5]), mem(a[5:]))
    assert overlap.may_share(a[:6], a[5:], mem(a[:6]), mem(a[5:]))
    assert not overlap.may_share(a[::2], a[1::2], mem(a[::2]), mem(a[1::2]))


# --- the same messages everywhere ---------------------------------------------------------

M_BOOL = np.ones(37, dtype=np.bool_)
# (what, forward or backward keyword arguments); each is bad in one way
BAD = [
    ("p", "fwd", {"p": 1.5}),
    ("p type", "fwd", {"p": "0.5"}),
    ("seed", "fwd", {"seed": 2**64}),
    ("seed type", "fwd", {"seed": 1.5}),
    ("offset", "fwd", {"offset": -1}),
    ("offset end", "fwd", {"offset": 2**64 - 3}),
    ("training", "fwd", {"training": "yes"}),
    ("mask_format", "fwd", {"mask_format": "packed"}),
    ("mask_format type", "fwd", {"mask_format": b"bits"}),
    ("noise_shape len", "fwd", {"noise_shape": (1, 1)}),
    ("noise_shape value", "fwd", {"noise_shape": (2,)}),
    ("dtype", "fwd", {"x": np.ones(37, np.int32)}),
    ("byte order", "fwd", {"x": X.astype(">f4")}),
    ("no source", "bwd", {"seed": None}),
    ("mask shape", "bwd", {"mask": np.ones(36, np.bool_)}),
    ("mask bytes", "bwd", {"mask": np.ones(4, np.uint8)}),
    ("mask dtype", "bwd", {"mask": np.ones(37, np.int32)}),
    ("noise mask", "bwd", {"mask": np.ones(37, np.bool_), "noise_shape": (1,)}),
    ("bwd dtype", "bwd", {"x": np.ones(37, np.int32)}),
]
# ... and out, which the Dask backend does not take
BAD_OUT = [
    ("out shape", "fwd", {"out": np.empty(36, np.float32)}),
    ("out type", "fwd", {"out": [0.0] * 37}),
    ("out overlaps x", "fwd", {"out": "x[::-1]"}),
    ("out overlaps itself", "bwd", {"out": "stride0"}),
]


def _message(call, wrap=lambda a: a):
    """``(function name, x, p, keywords)`` of a bad call; ``wrap`` makes the backend's arrays."""
    what, direction, bad = call
    kw = dict(bad)
    x = kw.pop("x", X.copy())
    p = kw.pop("p", 0.5)
    if isinstance(kw.get("out"), str):
        kw["out"] = x[::-1] if kw["out"] == "x[::-1]" else _self_overlapping()
    if "mask" in kw:
        kw["mask"] = wrap(kw["mask"])
    if direction == "fwd" or ("mask" not in kw and "seed" not in kw):
        kw.setdefault("seed", 1)
    return ("dropout_forward" if direction == "fwd" else "dropout_backward"), wrap(x), p, kw


def _raised(module, name, x, p, kw):
    try:
        getattr(module, name)(x, p, **kw)
    except (TypeError, ValueError) as e:
        return type(e).__name__, str(e)
    raise AssertionError(f"{module.NAME}.{name} accepted a bad argument: {kw}")


def _numpy_backends():
    return [kernels.BACKENDS[n] for n in ("reference", "cpu", "cuda") if n in kernels.BACKENDS]


@pytest.mark.parametrize("call", BAD + BAD_OUT, ids=[c[0] for c in BAD + BAD_OUT])
def test_same_message_on_every_backend(call):
    seen = {}
    for module in _numpy_backends():
        name, x, p, kw = _message(call)
        seen[module.NAME] = _raised(module, name, x, p, kw)
    if importlib.util.find_spec("dask") is not None and call in BAD:
        import dask.array as da

        from kernels import dask as kd

        name, x, p, kw = _message(call, lambda a: da.from_array(a, chunks=10))
        seen["dask"] = _raised(kd, name, x, p, kw)
    assert len(set(seen.values())) == 1, seen


def test_mask_type_message_is_written_once():
    """Each backend names the arrays it takes, in the one sentence."""
    for module in _numpy_backends():
        with pytest.raises(TypeError) as info:
            module.dropout_backward(X, 0.5, mask=[True] * 37)
        arrays = getattr(module, "ARRAYS", v.NUMPY_ARRAYS)
        assert str(info.value) == str(v.mask_type_error([True], arrays))
