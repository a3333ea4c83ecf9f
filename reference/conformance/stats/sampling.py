"""Samples of a dropout implementation, shared (and cached) between the probes.

An implementation is a :class:`reference.conformance.protocol.Implementation` (anything with the
backends' API is wrapped into one by :func:`impl_of`). Keep decisions are read end to end
from the output: ``x`` is all ones (float32), so element ``i`` is kept iff ``y[i] != 0``
(the returned mask is held to ``y`` by the semantic checks). Samples are cached, keyed by
the implementation *object* (never by a name: two implementations called "mine" do not
share samples), so that the keep-rate, uniformity, neighbour and cross-call probes share one call,
which matters under the CUDA simulator (~2 s per 4096 elements).
"""

from __future__ import annotations

import hashlib
import math
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from reference.stream import keep_threshold, scale_for

from ..protocol import as_implementation  # the protocol is the leaf of the checker: no cycle
from . import budget


def impl_of(obj):
    """``obj`` as an :class:`~reference.conformance.protocol.Implementation` (memoized wrapper)."""
    return as_implementation(obj)


# --- the null model -------------------------------------------------------------------


def keep_prob(p: float) -> float:
    """Exact keep probability of the contract: ``floor((1 - p) * 2**32) / 2**32`` (within
    2**-32 of 1 - p, which no test here can tell apart: the null for any RNG)."""
    return int(keep_threshold(p)) / 2**32


def scale(p: float, dtype=np.float32) -> float:
    return float(scale_for(p, dtype))


# --- inputs ---------------------------------------------------------------------------


def x_ones(n, dtype=np.float32) -> np.ndarray:
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

    The same label gives the same ``(seed, offset)`` on every implementation, so a failure
    of one implementation but not of the reference points at that implementation, not at chance.
    """

    master: int
    mode: str = "fixed"

    def _h(self, label: str) -> int:
        d = hashlib.blake2b(f"{self.master}:{label}".encode(), digest_size=16).digest()
        return int.from_bytes(d, "little")

    def seed(self, label: str) -> int:
        return self._h(label) % 2**63  # room for seed + 2**32 and seed ^ 2**63

    def offset(self, label: str) -> int:
        # A multiple of 2048 (element index = stream position mod every modulus tested,
        # budget.MODULI) below 2**51: the block counter's high word is exercised too.
        return ((self._h(label) >> 64) % 2**40) * 2048

    def __call__(self, label: str) -> tuple[int, int]:
        return self.seed(label), self.offset(label)


def seeds_from_option(opt) -> Seeds:
    """``'fixed'`` (budget.FIXED_MASTER_SEED), ``'random'`` (fresh, 63 bits) or an integer."""
    import secrets

    opt = str(opt).strip().lower()
    if opt == "fixed":
        return Seeds(budget.FIXED_MASTER_SEED, "fixed")
    if opt == "random":
        return Seeds(secrets.randbits(63), "random")
    try:
        return Seeds(int(opt, 0), "given")
    except ValueError:
        raise ValueError(f"--stat-seed must be 'fixed', 'random' or an integer, got {opt!r}") from None


# --- cache ----------------------------------------------------------------------------

_CACHE: OrderedDict = OrderedDict()
_CACHE_BYTES = [0]
CACHE_LIMIT = 384 * 2**20


def _cached(key, make):
    if key in _CACHE:
        _CACHE.move_to_end(key)
        return _CACHE[key]
    value = make()
    if value.nbytes <= CACHE_LIMIT // 4:
        _CACHE[key] = value
        _CACHE_BYTES[0] += value.nbytes
        while _CACHE_BYTES[0] > CACHE_LIMIT and _CACHE:
            _, old = _CACHE.popitem(last=False)
            _CACHE_BYTES[0] -= old.nbytes
    return value


def clear_cache():
    _CACHE.clear()
    _CACHE_BYTES[0] = 0


# --- samples --------------------------------------------------------------------------


def keep_mask(impl, n, p: float, seed: int, offset: int) -> np.ndarray:
    """Bool keep decisions of one call on ``ones(n)`` (``n`` an int or a shape)."""
    impl = impl_of(impl)

    def make():
        y, _ = impl.forward(x_ones(n), p, seed=seed, offset=offset)
        return y != 0

    return _cached(("keep", impl, n, p, seed, offset), make)


def keep_count(impl, n: int, p: float, seed: int, offset: int) -> int:
    """Number kept among ``n`` positions; above ``CHUNK`` in consecutive-offset chunks
    (in one call when the implementation has no offset: chunks need one)."""
    impl = impl_of(impl)
    if n <= budget.CHUNK or not impl.capabilities.offset:
        return int(np.count_nonzero(keep_mask(impl, n, p, seed, offset)))
    total = 0
    for start in range(0, n, budget.CHUNK):
        m = min(budget.CHUNK, n - start)
        y, _ = impl.forward(x_ones(m), p, seed=seed, offset=offset + start)
        total += int(np.count_nonzero(y))
    return total


def forward_ratio(impl, n: int, p: float, seed: int, offset: int, dtype=np.float32) -> np.ndarray:
    """``y / x`` (float64) of a forward call on ``x_signed``: 0 or the scale under the contract."""
    impl = impl_of(impl)

    def make():
        x = x_signed(n, dtype)
        y, _ = impl.forward(x, p, seed=seed, offset=offset)
        return y.astype(np.float64) / x.astype(np.float64)

    return _cached(("fwd_ratio", impl, n, p, seed, offset, np.dtype(dtype).name), make)


def backward_ratio(impl, n: int, p: float, seed: int, offset: int, source: str,
                   dtype=np.float32) -> np.ndarray:
    """``grad_x / grad_y`` of a backward call, the mask regenerated or from stored bits."""
    impl = impl_of(impl)

    def make():
        g = x_signed(n, dtype)
        if source == "regenerate":
            gx = impl.backward(g, p, seed=seed, offset=offset)
        elif source in ("bits", "bool"):
            _, mask = impl.forward(x_ones(n, dtype), p, seed=seed, offset=offset, mask_format=source)
            gx = impl.backward(g, p, mask=mask)
        else:
            raise ValueError(source)
        return gx.astype(np.float64) / g.astype(np.float64)

    return _cached(("bwd_ratio", impl, n, p, seed, offset, source, np.dtype(dtype).name), make)


# --- probes: one hypothesis each --------------------------------------------------------

#: A probe's sample size: a number of elements (or of seeds), an input shape (multidim), or
#: ``(x shape, noise shape)`` (structured masks).
Size = int | tuple


@dataclass(frozen=True)
class Probe:
    """One hypothesis of the battery, applicable to any implementation.

    ``run(impl, n, seeds) -> p-value`` with ``seeds(label) -> (seed, offset)``. ``sizes``
    maps a mode ("full", "quick" for --quick, "sim" for the CUDA simulator) to the sample
    size (None or absent: not run in that mode). ``needs`` are
    capabilities (reference.conformance.protocol.Capabilities.has) without which the probe
    is "not supported". ``stream_level`` probes test reference.stream itself, once.
    """

    label: str
    p: float
    sizes: dict = field(compare=False, hash=False)
    run: Callable = field(compare=False, repr=False)
    needs: tuple = ()
    stream_level: bool = False
    doc: str = field(default="", compare=False)
    slow: bool = False

    @property
    def family(self) -> str:
        return self.label.split("/")[0]

    @property
    def n(self):
        return self.sizes.get("full")

    @property
    def n_sim(self):
        return self.sizes.get("sim")

    def size(self, impl, mode: str = "full") -> Size | None:
        return self.sizes.get("sim" if impl_of(impl).simulated else mode)

    def __call__(self, impl, seeds, mode: str = "full") -> tuple[float, Size]:
        pv, n, _ = self.measure(impl, seeds, mode)
        return pv, n

    def measure(self, impl, seeds, mode: str = "full") -> tuple[float, Size, dict]:
        """``(p-value, n, info)``; ``info`` holds what a probe measured besides (may be empty)."""
        impl = impl_of(impl)
        impl.require(*self.needs)
        n = self.size(impl, mode)
        if n is None:  # the plan and the pytest fixtures skip such probes before measuring
            raise ValueError(f"{self.label} is not run on {impl.name} in mode {mode!r}")
        if not impl.capabilities.offset:  # the offset is incidental to probes that do not need it
            seeds = _AtOffsetZero(seeds)
        out = self.run(impl, n, seeds)
        pv, info = out if isinstance(out, tuple) else (out, {})
        pv = float(pv)
        return (pv if math.isfinite(pv) else 0.0), n, info


@dataclass(frozen=True)
class _AtOffsetZero:
    seeds: Seeds

    def __call__(self, label):
        return self.seeds.seed(label), 0


def sizes(full, quick="same", sim=None) -> dict:
    """Size per mode; quick defaults to min(full, budget.N_QUICK)."""
    if quick == "same":
        quick = full if not isinstance(full, int) else min(full, budget.N_QUICK)
    return {"full": full, "quick": quick, "sim": sim}


def fmt_p(p: float) -> str:
    return f"{p:.10g}"
