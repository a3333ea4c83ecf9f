"""A counter-based generator: one Philox stream (a 64-bit ``seed``) and a running ``offset``.

Every dropout call of the suite is a pure function of ``(seed, offset)``: the element ``i`` of
a call draws stream position ``offset + i`` (docs/RNG_STREAM.md), so a call on ``n`` mask
elements consumes positions ``[offset, offset + n)``. :class:`StreamGenerator` hands out
those ranges: ``take(n)`` returns ``(seed, offset)`` and moves the offset on by ``n``, so two
calls that take from one generator never draw the same position, and no mask repeats by
accident. Nothing else is random: no global state, no torch, NumPy not even needed.

* **Per module or shared**: give each dropout layer its own generator (distinct seeds, or one
  seed and disjoint offset ranges via :meth:`StreamGenerator.split`), or one generator to
  all of them (each call then takes the next range in call order).
* **Checkpointing**: :meth:`state_dict` / :meth:`load_state_dict` save and restore
  ``(seed, offset)``; a restored run draws exactly the masks the original drew next.
* **Thread safety**: ``take`` is atomic (a lock), so threads sharing a generator get disjoint
  ranges (which thread gets which range depends on the scheduling, then).

What you give up for this reproducibility: the masks depend on the order and sizes of the
calls. A shared generator gives a layer different masks if another layer's batch size, or
the call order, changes; a generator per layer keeps the layers independent of each other.
A ``copy.deepcopy`` (or a pickle) of a generator repeats the original's masks, on purpose: it
is how a run is replayed; give a copy that must differ a new seed or a ``split`` range.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from typing import Any

from reference.stream import splitmix64  # one definition; bench.training imports it from here too

#: Stream positions and seeds are 64-bit (docs/RNG_STREAM.md): offset + n must stay <= 2**64.
LIMIT = 1 << 64
STATE_VERSION = 1


def fresh_seed() -> int:
    """A 64-bit seed from the operating system's entropy: not reproducible unless recorded."""
    return int.from_bytes(os.urandom(8), "little")


def _check_int(name: str, value: Any, hi: int = LIMIT) -> int:
    if isinstance(value, bool) or not isinstance(value, int) and not hasattr(value, "__index__"):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
    value = int(value)
    if not 0 <= value < hi:
        raise ValueError(f"{name} must be in [0, {hi}), got {value}")
    return value


class StreamGenerator:
    """Seed plus running offset on the Philox stream; ``take(n)`` hands out fresh positions.

    ``seed=None`` draws a seed from the OS (recorded in :attr:`seed` and in the state dict).
    ``end`` bounds the range this generator may hand out (``split`` uses it); ``take`` past
    it raises ``OverflowError`` rather than reuse a position.
    """

    def __init__(self, seed: int | None = None, offset: int = 0, *, end: int = LIMIT):
        self._seed = fresh_seed() if seed is None else _check_int("seed", seed)
        self._end = _check_int("end", end, LIMIT + 1)
        self._offset = _check_int("offset", offset, self._end + 1)
        self._lock = threading.Lock()

    @property
    def seed(self) -> int:
        return self._seed

    @property
    def offset(self) -> int:
        """The next position ``take`` hands out."""
        return self._offset

    @property
    def end(self) -> int:
        return self._end

    @property
    def remaining(self) -> int:
        return self._end - self._offset

    def take(self, n: int) -> tuple[int, int]:
        """``(seed, offset)`` for a call on ``n`` mask elements; the offset moves on by ``n``."""
        n = _check_int("n", n, LIMIT + 1)
        with self._lock:
            start = self._offset
            if n > self._end - start:
                raise OverflowError(f"stream exhausted: {n} positions asked at offset {start}, "
                                    f"this generator ends at {self._end} (start a new seed)")
            self._offset = start + n
        return self._seed, start

    def take_seed(self, n: int) -> int:
        """A seed of its own for a call of ``n`` elements, for implementations that take no
        offset (each call then starts at its stream's position 0). The range ``[offset,
        offset + n)`` is consumed as by :meth:`take`; the seed is ``splitmix64`` of
        ``seed ^ splitmix64(offset)``: distinct offsets give distinct seeds (a bijection of the
        offset), but distinct seeds give non-overlapping masks only with high probability."""
        seed, offset = self.take(n)
        return splitmix64(seed ^ splitmix64(offset))

    def split(self, k: int) -> list[StreamGenerator]:
        """``k`` generators on this seed over disjoint, equal parts of the remaining range (one
        per layer, or per worker); this generator is used up by it."""
        k = _check_int("k", k)
        if k == 0:
            raise ValueError("k must be at least 1")
        with self._lock:
            start, size = self._offset, (self._end - self._offset) // k
            self._offset = self._end
        return [StreamGenerator(self._seed, start + j * size, end=start + (j + 1) * size) for j in range(k)]

    def state_dict(self) -> dict[str, int]:
        """``{"seed", "offset", "end", "version"}``: plain ints (torch.save, JSON, pickle)."""
        with self._lock:
            return {"seed": self._seed, "offset": self._offset, "end": self._end, "version": STATE_VERSION}

    def load_state_dict(self, state: Mapping[str, int]) -> None:
        if int(state.get("version", STATE_VERSION)) != STATE_VERSION:
            raise ValueError(f"unknown generator state version {state.get('version')!r}")
        seed = _check_int("seed", state["seed"])
        end = _check_int("end", state.get("end", LIMIT), LIMIT + 1)
        offset = _check_int("offset", state["offset"], end + 1)
        with self._lock:
            self._seed, self._offset, self._end = seed, offset, end

    def __getstate__(self) -> dict[str, int]:
        return self.state_dict()

    def __setstate__(self, state: dict[str, int]) -> None:
        self._lock = threading.Lock()
        self._seed, self._offset, self._end = 0, 0, LIMIT
        self.load_state_dict(state)

    def __repr__(self) -> str:
        end = "" if self._end == LIMIT else f", end={self._end}"
        return f"StreamGenerator(seed={self._seed}, offset={self._offset}{end})"


def as_generator(generator: StreamGenerator | int | None) -> StreamGenerator:
    """A generator from a generator (shared: itself), a seed (a new one), or None (OS seed)."""
    if isinstance(generator, StreamGenerator):
        return generator
    return StreamGenerator(generator)
