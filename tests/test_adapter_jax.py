"""The JAX adapters (reference/conformance/adapters/jax_random.py): Flax's dropout on the
three PRNG implementations, judged on a few semantic checks, plus what the module documents
(16-bit dtypes kept, float64 not supported, 32-bit seeds, Flax's unchecked rate)."""

from __future__ import annotations

import numpy as np
import pytest

jax = pytest.importorskip("jax")

from reference.conformance import loader, runner  # noqa: E402
from reference.conformance.adapters import jax_random  # noqa: E402
from reference.conformance.protocol import Unsupported  # noqa: E402

FACTORIES = {"threefry": jax_random.make_threefry, "threefry_partitionable": jax_random.make_threefry_partitionable,
             "rbg": jax_random.make_rbg}
PASSING = ["semantic/p0_identity", "semantic/p1_zeros", "semantic/eval_identity", "semantic/kept_scaled",
           "semantic/same_seed_repeats", "semantic/seeds_differ", "semantic/backward"]


@pytest.fixture(scope="module", params=list(FACTORIES))
def impl(request):
    return getattr(jax_random, request.param)  # the module attribute, built once


def test_semantic_checks(impl):
    names = PASSING if impl.name == "jax-threefry" else PASSING[-3:]  # each (shape, dtype, p) compiles once
    run = runner.run(impl, names=names + ["semantic/bad_p"], quick=True)
    status = {r.name: r.status for r in run.results}
    assert all(status[n] == "pass" for n in names), status
    assert status["semantic/bad_p"] == "fail"  # flax.linen.Dropout does not check its rate


def test_half_dtypes_kept_float64_not_supported(impl):
    import ml_dtypes

    for dt in (np.float16, ml_dtypes.bfloat16):
        x = np.linspace(1, 2, 64).astype(dt)
        y, _ = impl.forward(x, 0.5, seed=3)
        assert y.dtype == x.dtype and impl.backward(x, 0.5, seed=3).dtype == x.dtype
        assert np.array_equal(y[y != 0], (x / np.float32(0.5)).astype(dt)[y != 0])
    with pytest.raises(Unsupported):
        impl.forward(np.ones(8), 0.5, seed=3)


def test_same_seed_same_mask_backward_matches(impl):
    x = np.linspace(1, 2, 999, dtype=np.float32)
    a, _ = impl.forward(x, 0.3, seed=7)
    assert np.array_equal(a, impl.forward(x, 0.3, seed=7)[0])
    assert not np.array_equal(a != 0, impl.forward(x, 0.3, seed=8)[0] != 0)
    assert np.array_equal(impl.backward(np.ones_like(x), 0.3, seed=7) != 0, a != 0)


def test_noise_shape_is_broadcast_dims(impl):
    x = np.ones((6, 5, 4), np.float32)
    y, _ = impl.forward(x, 0.5, seed=1, noise_shape=(6, 1, 4))
    assert (y == y[:, :1, :]).all() and 0 < np.count_nonzero(y) < y.size


def test_seeds_are_32_bits_and_global_flag_untouched():
    assert jax.random.key_data(jax.random.key(1 + 2**32)).tolist() == [0, 1]  # JAX keeps the low 32 bits
    assert all(getattr(jax_random, n).seed_bits == 32 for n in FACTORIES)
    flag = jax.config.jax_threefry_partitionable
    x = np.ones(256, np.float32)
    masks = [getattr(jax_random, n).forward(x, 0.5, seed=5)[0] != 0 for n in FACTORIES]
    assert jax.config.jax_threefry_partitionable == flag
    assert not np.array_equal(masks[0], masks[1]) and not np.array_equal(masks[0], masks[2])


def test_loader_finds_the_module_attribute():
    assert loader.load("reference.conformance.adapters.jax_random:rbg") is jax_random.rbg
