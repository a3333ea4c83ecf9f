"""Keras 3 dropout on the JAX backend, checked in stateful mode (protocol.from_stateful):
``keras.random.dropout(x, rate, seed=gen)`` with one ``keras.random.SeedGenerator`` held
across calls, and ``keras.layers.Dropout(rate, seed=...)`` called with ``training=True`` /
``False``. ``reseed(seed)`` makes a new generator (new layers); ``seed_bits=32``.

Why JAX: there the generator's state ``[seed, k]`` (uint32) is itself the threefry key of the
k-th call (``jax.random.bernoulli``, then Flax's formula: ``lax.select(mask, x / keep, 0)``),
so every (seed, call) pair has a key of its own. On the PyTorch backend a seeded call
re-seeds a fresh ``torch.Generator`` with ``(seed + k) mod 2**32``: seed s at call k + 1
draws seed s + 1's call k. KERAS_BACKEND must be "jax" (or unset: it is set here) before
Keras is imported; another backend already chosen is an error.

Observed (Keras 3.15.1, JAX 0.10.2, 32-bit mode):

* the generator advances by one per call (``[seed, 0]``, ``[seed, 1]``, ...): the same
  SeedGenerator gives a different mask on each call; ``rate == 0`` and ``rate == 1`` return
  before drawing, and so does the layer in evaluation mode: neither advances it;
* ``SeedGenerator(seed)`` takes 0 <= seed < 2**32 (uint32 state; 2**32, -1 and 63-bit seeds
  raise OverflowError);
* the layer casts input to its dtype policy (float32 by default: a float16 input comes back
  float32), so the adapter builds one layer per (rate, dtype) with ``dtype=`` the input's;
* float64 comes back float32 (x64 off): not supported;
* ``keras.random.dropout`` does not check ``rate`` (-0.1 scales by 1/1.1, 1.5 and NaN give
  zeros); the layer refuses a rate outside [0, 1] and NaN;
* a NumPy rate (``np.float64(0.5)``, a 0-d array) on a float16 or bfloat16 input raises
  (``lax.select`` of float16 and float32): only a Python float keeps the 16-bit path working;
* under a plain ``jax.jit`` the layer's state update happens once, at trace time: every
  jitted call returns the same mask and the layer is left holding a leaked tracer (the next
  eager call raises UnexpectedTracerError); ``layer.stateless_call`` under jit (what Keras's
  own training step does) advances it correctly. The adapters call eagerly;
* ``dropout-check``, full run: both FAIL ``half_mean/float16/p=0.01`` (``inputs / keep_prob``
  rounds ``keep_prob`` to float16 first, as in Flax: reference/conformance/adapters/jax_random.py),
  ``keras.random.dropout`` also ``semantic/bad_p``; the stateful checks (successive calls
  differ, reseed reproduces, p = 0 and evaluation mode leave the generator alone) and the
  successive-call statistics pass.

The module attributes ``random_dropout`` and ``layer`` are the built Implementations, for
``dropout-check reference.conformance.adapters.keras3:layer``.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import sys

import numpy as np

from reference.conformance.protocol import Implementation, from_stateful

BACKEND = "jax"
DTYPES = ("float32", "float16", "bfloat16")  # 32-bit JAX: float64 comes back float32
SEED_BITS = 32                               # SeedGenerator's uint32 state
DEFAULT_SEED = 1337                          # Keras's docstring example; reseed replaces it


def _keras():
    """Keras on the JAX backend; a clear error where another backend is already chosen."""
    env = os.environ.get("KERAS_BACKEND")
    if env is not None and env != BACKEND:
        raise RuntimeError(f"the Keras adapters run on the {BACKEND!r} backend, but KERAS_BACKEND={env!r} "
                           f"in this process; run them in a process with KERAS_BACKEND={BACKEND} or unset")
    if "keras" not in sys.modules:
        os.environ["KERAS_BACKEND"] = BACKEND  # read once, when keras is first imported
    import keras

    if keras.backend.backend() != BACKEND:
        raise RuntimeError(f"keras was imported with the {keras.backend.backend()!r} backend in this process; "
                           f"the Keras adapters need {BACKEND!r} (set KERAS_BACKEND={BACKEND} before importing keras)")
    return keras


def _np(y):
    return np.array(y)  # a writable NumPy copy; bfloat16 as ml_dtypes.bfloat16


def _describe(keras, what):
    import jax

    return f"{what} (keras {keras.__version__}, {BACKEND} backend, jax {jax.__version__}, 32-bit mode)"


def make_random_dropout() -> Implementation:
    keras = _keras()
    state = {"gen": keras.random.SeedGenerator(DEFAULT_SEED)}

    def dropout(x, p, noise_shape=None):
        return _np(keras.random.dropout(keras.ops.convert_to_tensor(x), p, noise_shape=noise_shape,
                                        seed=state["gen"]))

    def reseed(seed):
        state["gen"] = keras.random.SeedGenerator(seed)

    return from_stateful(dropout, "keras-random-dropout", reseed=reseed, seed_bits=SEED_BITS, dtypes=DTYPES,
                         description=_describe(keras, "keras.random.dropout with one SeedGenerator"))


def make_layer() -> Implementation:
    keras = _keras()
    state: dict = {"seed": DEFAULT_SEED, "layers": {}}

    def layer(p, dtype, noise_shape):
        # rate and noise_shape are fixed at construction: one layer per (rate, dtype policy,
        # noise_shape), seeded alike
        key = (float(p), dtype, noise_shape)
        if key not in state["layers"]:
            state["layers"][key] = keras.layers.Dropout(p, noise_shape=noise_shape, seed=state["seed"], dtype=dtype)
        return state["layers"][key]

    def dropout(x, p, training=True, noise_shape=None):
        return _np(layer(p, np.dtype(x.dtype).name, noise_shape)(x, training=training))

    def reseed(seed):
        state["seed"], state["layers"] = seed, {}

    impl = from_stateful(dropout, "keras-layers-dropout", reseed=reseed, seed_bits=SEED_BITS, dtypes=DTYPES,
                         description=_describe(keras, "keras.layers.Dropout, eager, one layer per rate and dtype"))
    # from_stateful probes training= with float64 input, which comes back float32 here
    x = np.linspace(1, 2, 16, dtype=np.float32)
    if not impl.capabilities.training and np.array_equal(dropout(x, 0.5, training=False), x):
        impl.capabilities = dataclasses.replace(impl.capabilities, training=True)
    return impl


_FACTORIES = {"random_dropout": make_random_dropout, "layer": make_layer}


@functools.cache
def __getattr__(name: str) -> Implementation:  # module attributes built on first use (PEP 562)
    if name in _FACTORIES:
        return _FACTORIES[name]()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
