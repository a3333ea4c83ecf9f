"""The Keras 3 adapters (reference/conformance/adapters/keras3.py), stateful mode on the JAX
backend: the stateful checks and a few semantic ones, plus what the module documents (the
generator advances per call, not at p = 0 or in evaluation mode; 16-bit dtypes kept by the
per-dtype layer; 32-bit seeds; the layer checks its rate, keras.random.dropout does not)."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

if not (importlib.util.find_spec("jax") and importlib.util.find_spec("keras")):  # no import: keras picks
    pytest.skip("needs jax and keras", allow_module_level=True)                   # its backend on import

from reference.conformance import runner  # noqa: E402
from reference.conformance.adapters import keras3  # noqa: E402

NAMES = ["stateful/*", "semantic/p0_identity", "semantic/p1_zeros", "semantic/kept_scaled",
         "semantic/same_seed_repeats", "semantic/seeds_differ", "semantic/eval_identity"]


@pytest.fixture(scope="module", params=["random_dropout", "layer"])
def impl(request):
    try:
        return getattr(keras3, request.param)
    except RuntimeError as e:  # keras already on another backend in this process
        pytest.skip(str(e))


def test_stateful_and_semantic_checks(impl):
    run = runner.run(impl, names=NAMES, quick=True)
    status = {r.name: r.status for r in run.results}
    assert set(status.values()) <= {"pass", "not supported"}, status
    assert status["stateful/successive_differ"] == "pass" and status["stateful/reseed_reproduces"] == "pass"
    want = "pass" if impl.name == "keras-layers-dropout" else "not supported"  # no training= in keras.random
    assert status["semantic/eval_identity"] == want == status["stateful/eval_keeps_generator"]


def test_generator_advances_per_call_not_at_p0(impl):
    h, x = impl.hooks, np.linspace(1, 2, 512, dtype=np.float32)
    h.reseed(9)
    a, b = h.call(x, 0.5), h.call(x, 0.5)
    assert not np.array_equal(a != 0, b != 0)
    h.reseed(9)
    assert np.array_equal(h.call(x, 0.0), x)  # returns before drawing
    assert np.array_equal(h.call(x, 0.5), a)


def test_dtypes(impl):
    import ml_dtypes

    for dt in (np.float16, ml_dtypes.bfloat16):
        x = np.linspace(1, 2, 64).astype(dt)
        assert impl.hooks.call(x, 0.5).dtype == x.dtype
    assert "float64" not in impl.capabilities.dtypes and impl.seed_bits == 32


def test_rate_checked_by_the_layer_only(impl):
    keras = keras3._keras()
    with pytest.raises(ValueError):
        keras3.layer.hooks.call(np.ones(8, np.float32), 1.5)
    assert not keras3.random_dropout.hooks.call(np.ones(8, np.float32), 1.5).any()  # zeros, no error
    with pytest.raises(OverflowError):
        keras.random.SeedGenerator(2**32)  # uint32 state: seed_bits = 32
