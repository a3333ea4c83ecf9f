"""The layout probe (issue 21, item 4: reference/conformance/layout.py): the same logical input
in C order and in other memory layouts must be dropped alike at level contract; at level
statistical a layout-dependent mask is a note."""

from __future__ import annotations

import numpy as np
import pytest

from reference.conformance import layout, loader
from reference.conformance.protocol import Note, from_callable

MEMORY_ORDER = ("transposed", "transposed_copy", "channels_last", "negative_stride")


def _memory_order(x):
    """The logical C index of each element of ``x``, in the order of its memory (byte offsets)."""
    where = sum(np.indices(x.shape) * np.array(x.strides).reshape((-1,) + (1,) * x.ndim))
    return np.argsort(np.ravel(where), kind="stable")


def _memory_order_dropout():
    """The reference's dropout drawn by memory position: element i of memory gets stream word i
    (as a kernel that walks the buffer does), so the mask follows the layout."""
    ref = loader.load("reference")

    def dropout(x, p, seed):
        x = np.asarray(x)
        order = _memory_order(x)
        y_mem, _ = ref.forward(np.ravel(x)[order], p, seed=seed)    # 1-D, in memory order
        y = np.empty(x.size, x.dtype)
        y[order] = y_mem
        return y.reshape(x.shape)

    return from_callable(dropout, name="memory-order", dtypes=("float32",))


@pytest.mark.parametrize("name", list(layout.CHECKS))
def test_reference_passes_at_level_contract(name):
    needs, fn = layout.CHECKS[name]
    assert needs == ()
    ok, detail = fn(loader.load("reference"), True)
    assert ok, detail
    assert "the same mask and the same bits" in detail


@pytest.mark.parametrize("name", MEMORY_ORDER)
def test_memory_order_mask_fails_at_contract_and_is_a_note_at_statistical(name):
    impl = _memory_order_dropout()
    fn = layout.CHECKS[name][1]
    ok, detail = fn(impl, True)
    assert not ok
    assert "mask elements differ" in detail and "laid out in memory order" in detail, detail
    assert f"seed {layout.SEED:#x}" in detail
    with pytest.raises(Note, match="allowed at level statistical"):
        fn(impl, False)


def test_the_inputs_are_the_same_values_in_other_layouts():
    for lay in layout.LAYOUTS.values():
        x = np.arange(1, int(np.prod(lay.shape)) + 1, dtype=np.float32).reshape(lay.shape)
        xl = lay.store(x)
        assert np.array_equal(xl, x) and not xl.flags.c_contiguous
        assert np.array_equal(np.ravel(lay.memory(x)), np.ravel(xl)[_memory_order(xl)])  # memory(): its order
        assert 1000 < x.size < 5000


def test_torch_mask_follows_the_memory_layout():
    pytest.importorskip("torch")
    impl = loader.load("torch-dropout")
    for name in ("transposed", "transposed_copy", "channels_last"):
        fn = layout.CHECKS[name][1]
        ok, detail = fn(impl, True)
        assert not ok and "laid out in memory order" in detail, detail
        with pytest.raises(Note):
            fn(impl, False)
    ok, detail = layout.negative_stride(impl, True)  # torch takes no negative stride: a forward copy
    assert ok, detail


def test_torch_adapter_keeps_the_layout():
    pytest.importorskip("torch")
    import ml_dtypes

    from reference.conformance.adapters.torch_cpu import _np, _t
    from reference.conformance.arrays import bits_equal

    x = np.linspace(-3, 3, 4 * 8 * 3 * 5, dtype=np.float32).reshape(4, 8, 3, 5)
    cl = layout.LAYOUTS["channels_last"].store(x)
    assert _t(cl).stride() == tuple(s // 4 for s in cl.strides)   # channels-last stays channels-last
    assert _t(x.T).stride() == tuple(s // 4 for s in x.T.strides)
    assert _t(np.float32(2.5)).shape == ()                          # 0-d stays 0-d
    b = x.astype(ml_dtypes.bfloat16).T
    assert bits_equal(_np(_t(b)), b) and _t(b).stride() == _t(x.T).stride()
    impl = loader.load("torch-dropout")
    y, _ = impl.forward(cl, 0.0, seed=1)
    assert bits_equal(y, cl) and not np.shares_memory(y, cl)        # F.dropout returns its input: copied
