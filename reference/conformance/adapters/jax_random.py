"""JAX's dropout as Flax writes it (``flax.linen.Dropout.__call__``), seeded with
``jax.random.key(seed, impl=...)``, one factory per PRNG implementation:

    if rate == 0.0 or deterministic: return inputs
    if rate == 1.0: return jnp.zeros_like(inputs)
    keep_prob = 1.0 - rate
    mask = random.bernoulli(rng, p=keep_prob, shape=broadcast_shape)   # 1 on broadcast_dims
    return lax.select(jnp.broadcast_to(mask, inputs.shape), inputs / keep_prob, jnp.zeros_like(inputs))

* ``make_threefry``: threefry2x32 with ``jax_threefry_partitionable=False``, the stream of
  the 0.4 series (the flag's old default);
* ``make_threefry_partitionable``: threefry2x32 with ``jax_threefry_partitionable=True``, the
  default in the jax tested (0.10.2; the flip was announced in jax discussion #18480): another
  stream for the same key;
* ``make_rbg``: ``impl="rbg"`` (XLA's RngBitGenerator; the partitionable flag does not touch it).

The flag is set per call with the ``jax.threefry_partitionable`` context manager (part of the
jit cache key), the impl per key, so the three never change each other's global config.
Evaluation mode is ``deterministic=True`` (identity); backward is ``jax.vjp`` of the same
function, the mask regenerated from the seed. ``noise_shape`` maps to Flax's
``broadcast_dims`` (any axis, so any noise shape).

Known (jax 0.10.2, CPU, 32-bit mode; ``dropout-check``, full run: FAIL, the same two
checks on all three PRNGs, the rest pass, noise shapes and layouts included):

* ``jax.random.key(seed)`` keeps the low 32 bits of the seed silently (2**32 + 1 is seed 1;
  2**63 and above raise OverflowError): ``seed_bits=32``. float64 comes back float32: not
  supported. float16 and bfloat16 keep their dtype, backward too;
* ``semantic/bad_p``: Flax does not check ``rate``: -0.1 scales by 1/1.1, 1.5, NaN and inf
  give zeros, no error;
* ``half_mean/float16/p=0.01``: ``inputs / keep_prob`` with a Python float is weakly typed,
  so JAX rounds ``keep_prob`` to the input's dtype first (0.99 -> 0.990234375 in float16):
  kept value 1.02539, not round16(x * scale32) = 1.02637, -0.09 % of E[y]. bfloat16 does
  the same (x = 1.015625: 1.03125, not 1.0234375), which the bfloat16 probe's constant
  does not expose;
* a NumPy ``rate`` (``np.float64(0.5)``) on a 16-bit input raises (``lax.select`` of float16
  and float32): the adapter passes ``float(p)``, as a Flax module attribute usually is.

The module attributes ``threefry``, ``threefry_partitionable`` and ``rbg`` are the built
Implementations, for ``dropout-check reference.conformance.adapters.jax_random:threefry``.
"""

from __future__ import annotations

import contextlib
import functools

import numpy as np

from reference.conformance.protocol import Capabilities, Implementation

# 32-bit mode (JAX's default; x64 is not enabled here): float64 would come back float32
DTYPES = ("float32", "float16", "bfloat16")
SEED_BITS = 32


def _flax_dropout(rng, inputs, rate, broadcast_dims=()):
    """flax.linen.Dropout.__call__, training path, literally (``rate`` a Python float)."""
    import jax.numpy as jnp
    from jax import lax, random

    if rate == 0.0:
        return inputs
    if rate == 1.0:  # Flax: "Prevent gradient NaNs in 1.0 edge-case."
        return jnp.zeros_like(inputs)
    keep_prob = 1.0 - rate
    broadcast_shape = list(inputs.shape)
    for dim in broadcast_dims:
        broadcast_shape[dim] = 1
    mask = random.bernoulli(rng, p=keep_prob, shape=broadcast_shape)
    mask = jnp.broadcast_to(mask, inputs.shape)
    return lax.select(mask, inputs / keep_prob, jnp.zeros_like(inputs))


@functools.cache
def _jitted():
    """(forward, backward), jitted once per process: rate and broadcast_dims static (as a Flax
    module's attributes are), the shape static by jit's own specialization."""
    import jax
    import jax.numpy as jnp

    static = ("rate", "broadcast_dims")
    fwd = jax.jit(_flax_dropout, static_argnames=static)

    def vjp(rng, g, rate, broadcast_dims=()):
        _, pull = jax.vjp(lambda a: _flax_dropout(rng, a, rate, broadcast_dims), jnp.zeros_like(g))
        return pull(g)[0]

    return fwd, jax.jit(vjp, static_argnames=static)


def _broadcast_dims(shape, noise_shape) -> tuple:
    if noise_shape is None:
        return ()
    return tuple(d for d, (n, s) in enumerate(zip(noise_shape, shape)) if n == 1 and s != 1)


def _np(y):
    return np.array(y)  # a writable NumPy copy; bfloat16 comes back as ml_dtypes.bfloat16


def _make(name: str, impl: str, partitionable: bool | None, what: str) -> Implementation:
    import jax
    import jax.numpy as jnp

    fwd, bwd = _jitted()

    def key(seed):
        return jax.random.key(seed, impl=impl)  # the protocol folds seeds below 2**SEED_BITS

    def flag():
        return jax.threefry_partitionable(partitionable) if partitionable is not None else contextlib.nullcontext()

    def forward(x, p, *, seed, offset, training, mask_format, noise_shape=None):
        if not training:  # deterministic=True: the input as is
            return _np(jnp.asarray(x)), None
        with flag():
            y = fwd(key(seed), jnp.asarray(x), rate=float(p), broadcast_dims=_broadcast_dims(x.shape, noise_shape))
        return _np(y), None

    def backward(g, p, *, mask, seed, offset, noise_shape=None):
        with flag():
            gx = bwd(key(seed), jnp.asarray(g), rate=float(p), broadcast_dims=_broadcast_dims(g.shape, noise_shape))
        return _np(gx)

    caps = Capabilities(dtypes=DTYPES, mask_formats=(), regenerate=True, offset=False, training=True,
                        noise_shape=True)
    return Implementation(name, forward, backward, caps, description=f"flax.linen.Dropout's formula, {what} "
                          f"(jax {jax.__version__}, 32-bit mode)", seed_bits=SEED_BITS)


def make_threefry() -> Implementation:
    return _make("jax-threefry", "threefry2x32", False, "threefry2x32, jax_threefry_partitionable=False")


def make_threefry_partitionable() -> Implementation:
    return _make("jax-threefry-partitionable", "threefry2x32", True,
                 "threefry2x32, jax_threefry_partitionable=True")


def make_rbg() -> Implementation:
    return _make("jax-rbg", "rbg", None, "impl='rbg'")


_FACTORIES = {"threefry": make_threefry, "threefry_partitionable": make_threefry_partitionable, "rbg": make_rbg}


@functools.cache
def __getattr__(name: str) -> Implementation:  # module attributes built on first use (PEP 562)
    if name in _FACTORIES:
        return _FACTORIES[name]()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
