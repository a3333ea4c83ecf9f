"""Samples of a dropout implementation, shared (and cached) between the property tests.

An *implementation* (``impl``) is anything with the registry's API: a backend module of
``kernels.BACKENDS`` or a mutant of ``tests/stats/mutants.py``: ``impl.NAME``,
``impl.dropout_forward(x, p, *, seed, offset=0, mask_format=...)`` and
``impl.dropout_backward(grad_y, p, *, mask=None, seed=None, offset=0)``.

The keep decisions are read end to end from the output: ``x`` is all ones (float32), so
element ``i`` is kept iff ``y[i] != 0`` (the returned mask is held to ``y`` by the exact
tests elsewhere). Samples are cached (a few hundred MB at most) so that the keep-rate,
uniformity, neighbour and cross-call tests can share one call, which matters under the
CUDA simulator (~2 s per 4096 elements).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from reference.stream import keep_threshold, scale_for

from . import budget

# --- the null model -------------------------------------------------------------------


def keep_prob(p: float) -> float:
    """Exact keep probability of the contract: ``floor((1 - p) * 2**32) / 2**32``."""
    return int(keep_threshold(p)) / 2**32


def scale(p: float, dtype=np.float32) -> float:
    return float(scale_for(p, dtype))


# --- inputs ---------------------------------------------------------------------------


def x_ones(n: int, dtype=np.float32) -> np.ndarray:
    return np.ones(n, dtype=dtype)


def x_signed(n: int, dtype=np.float32) -> np.ndarray:
    """``+-U[0.5, 2)``, fixed (the randomness under test is the stream's, not x's)."""
    rng = np.random.default_rng(20240604)
    mag = rng.uniform(0.5, 2.0, size=n)
    sign = np.where(rng.integers(0, 2, size=n) == 1, 1.0, -1.0)
    return (mag * sign).astype(dtype)


# --- seeds ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Seeds:
    """Seeds and offsets derived from one master seed and a label (stable across runs).

    The same label gives the same ``(seed, offset)`` on every backend, so that backends
    are tested on the same samples (and a failure of one backend but not of the reference
    points at the kernel, not at chance).
    """

    master: int
    mode: str = "fixed"

    def _h(self, label: str) -> int:
        d = hashlib.blake2b(f"{self.master}:{label}".encode(), digest_size=16).digest()
        return int.from_bytes(d, "little")

    def seed(self, label: str) -> int:
        return self._h(label) % 2**63  # room for seed + 2**32 and seed ^ 2**63

    def offset(self, label: str) -> int:
        # A multiple of 2048 (element index = stream position mod every modulus tested)
        # below 2**51: the block counter's high word is exercised too.
        return ((self._h(label) >> 64) % 2**40) * 2048

    def __call__(self, label: str) -> tuple[int, int]:
        return self.seed(label), self.offset(label)


# --- cache ----------------------------------------------------------------------------

_CACHE: OrderedDict = OrderedDict()
_CACHE_BYTES = [0]
CACHE_LIMIT = 384 * 2**20


def _cached(key, make):
    if key in _CACHE:
        _CACHE.move_to_end(key)
        return _CACHE[key]
    value = make()
    size = value.nbytes if isinstance(value, np.ndarray) else 0
    if size <= CACHE_LIMIT // 4:
        _CACHE[key] = value
        _CACHE_BYTES[0] += size
        while _CACHE_BYTES[0] > CACHE_LIMIT and _CACHE:
            _, old = _CACHE.popitem(last=False)
            _CACHE_BYTES[0] -= old.nbytes if isinstance(old, np.ndarray) else 0
    return value


def clear_cache():
    _CACHE.clear()
    _CACHE_BYTES[0] = 0


def _name(impl) -> str:
    return getattr(impl, "NAME", None) or repr(impl)


# --- samples --------------------------------------------------------------------------


def keep_mask(impl, n: int, p: float, seed: int, offset: int) -> np.ndarray:
    """Bool keep decisions of stream positions ``offset .. offset + n - 1`` (one call)."""

    def make():
        y, _ = impl.dropout_forward(x_ones(n), p, seed=seed, offset=offset, mask_format=None)
        return np.asarray(y) != 0

    return _cached(("keep", _name(impl), n, p, seed, offset), make)


def keep_count(impl, n: int, p: float, seed: int, offset: int) -> int:
    """Number kept among ``n`` positions; above ``CHUNK`` in consecutive-offset chunks."""
    if n <= budget.CHUNK:
        return int(np.count_nonzero(keep_mask(impl, n, p, seed, offset)))
    total = 0
    for start in range(0, n, budget.CHUNK):
        m = min(budget.CHUNK, n - start)
        y, _ = impl.dropout_forward(x_ones(m), p, seed=seed, offset=offset + start, mask_format=None)
        total += int(np.count_nonzero(np.asarray(y)))
    return total


def forward_ratio(impl, n: int, p: float, seed: int, offset: int, dtype=np.float32) -> np.ndarray:
    """``y / x`` (float64) of a forward call on ``x_signed``: 0 or the scale under the contract."""

    def make():
        x = x_signed(n, dtype)
        y, _ = impl.dropout_forward(x, p, seed=seed, offset=offset, mask_format=None)
        return np.asarray(y).astype(np.float64) / x.astype(np.float64)

    return _cached(("fwd_ratio", _name(impl), n, p, seed, offset, np.dtype(dtype).name), make)


def backward_ratio(impl, n: int, p: float, seed: int, offset: int, source: str,
                   dtype=np.float32) -> np.ndarray:
    """``grad_x / grad_y`` of a backward call, the mask regenerated or from stored bits."""

    def make():
        g = x_signed(n, dtype)
        if source == "regenerate":
            gx = impl.dropout_backward(g, p, seed=seed, offset=offset)
        elif source == "bits":
            _, bits = impl.dropout_forward(x_ones(n, dtype), p, seed=seed, offset=offset,
                                           mask_format="bits")
            gx = impl.dropout_backward(g, p, mask=np.asarray(bits))
        else:
            raise ValueError(source)
        return np.asarray(gx).astype(np.float64) / g.astype(np.float64)

    return _cached(("bwd_ratio", _name(impl), n, p, seed, offset, source, np.dtype(dtype).name), make)


# --- probes: one hypothesis each --------------------------------------------------------


@dataclass(frozen=True)
class Probe:
    """One hypothesis of the battery, applicable to any implementation.

    ``run(impl, n, seeds) -> p-value``; ``seeds(label) -> (seed, offset)``.
    ``n_sim`` is the size under the CUDA simulator (None: not run there).
    """

    label: str
    p: float
    n: int
    n_sim: int | None
    run: Callable = field(compare=False, repr=False)
    statistical: bool = True

    @property
    def family(self) -> str:
        return self.label.split("/")[0]

    def size(self, impl) -> int | None:
        return self.n_sim if budget.simulated(impl) else self.n

    def __call__(self, impl, seeds) -> tuple[float, int]:
        n = self.size(impl)
        return float(self.run(impl, n, seeds)), n


def fmt_p(p: float) -> str:
    return f"{p:.10g}"
