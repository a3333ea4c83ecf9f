"""The one timing loop: warm-up, then repeated samples, summarized as median, p20 and p80.

CPU providers are timed with the host clock (``time.perf_counter``). CUDA providers are
timed with CUDA events recorded on the default stream around the calls, after a warm-up
and a synchronize, so the figure is device time; a host clock would also count launch
latency and whatever the host did meanwhile.

Every sample is the mean over ``inner`` back-to-back calls. ``inner`` is calibrated so a
sample lasts at least ``min_sample_s``: one call on 1 Ki elements takes a few microseconds,
too close to the clock's resolution and to the cost of reading it.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Timing:
    """All samples of one measurement (seconds per call) and how they were taken."""

    samples: tuple[float, ...]
    inner: int = 1
    clock: str = "perf_counter"
    warmup: int = 0
    extra: dict = field(default_factory=dict, compare=False)

    @property
    def median(self) -> float:
        return float(np.median(self.samples))

    @property
    def p20(self) -> float:
        return float(np.percentile(self.samples, 20))

    @property
    def p80(self) -> float:
        return float(np.percentile(self.samples, 80))

    @property
    def repeats(self) -> int:
        return len(self.samples)


def _cuda():
    from numba import cuda

    return cuda


class _HostClock:
    name = "perf_counter"

    def sample(self, fn, inner: int) -> float:
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        return (time.perf_counter() - t0) / inner

    def sync(self) -> None:
        pass


class _CudaEvents:
    name = "cuda-event"

    def __init__(self):
        cuda = _cuda()
        self._cuda = cuda
        self._start = cuda.event()  # timing=True is the default (the simulator takes no argument)
        self._end = cuda.event()  # timing=True is the default (the simulator takes no argument)

        # The CUDA simulator's events exist but always report -1 ms: time it on the host.
        self._simulated = type(self._start).__module__.startswith("numba.cuda.simulator")
        if self._simulated:
            self.name = "perf_counter (cuda simulator)"

    def sample(self, fn, inner: int) -> float:
        if self._simulated:
            t0 = time.perf_counter()
            for _ in range(inner):
                fn()
            self.sync()
            return (time.perf_counter() - t0) / inner
        self._start.record()
        for _ in range(inner):
            fn()
        self._end.record()
        self._end.synchronize()
        return self._start.elapsed_time(self._end) / 1e3 / inner

    def sync(self) -> None:
        self._cuda.synchronize()


class _TorchCudaEvents(_CudaEvents):
    """CUDA events through PyTorch, for PyTorch's kernels on its current stream."""

    name = "torch-cuda-event"

    def __init__(self):
        import torch

        self._torch = torch
        self._start = torch.cuda.Event(enable_timing=True)
        self._end = torch.cuda.Event(enable_timing=True)

    def sample(self, fn, inner: int) -> float:
        self._start.record()
        for _ in range(inner):
            fn()
        self._end.record()
        self._end.synchronize()
        return self._start.elapsed_time(self._end) / 1e3 / inner

    def sync(self) -> None:
        self._torch.cuda.synchronize()


CLOCKS = {"host": _HostClock, "cuda": _CudaEvents, "torch-cuda": _TorchCudaEvents}


def measure(
    fn,
    *,
    clock: str = "host",
    warmup: int = 2,
    repeats: int = 25,
    min_repeats: int = 3,
    budget_s: float = 1.0,
    min_sample_s: float = 2e-4,
    max_inner: int = 1000,
) -> Timing:
    """Time ``fn()`` (no arguments, result ignored) with ``clock``: 'host' (perf_counter),
    'cuda' (numba.cuda events) or 'torch-cuda' (torch.cuda events).

    ``warmup`` untimed calls first (compilation, first-touch page faults, caches; after
    the second, warm-up stops once one call takes longer than ``budget_s / 4``), then up
    to ``repeats`` samples, stopping early once ``budget_s`` seconds of wall time have been
    spent and at least ``min_repeats`` samples exist, so that big, slow points do not
    dominate a sweep.
    """
    if repeats < 1:
        raise ValueError("repeats must be >= 1")
    try:
        clock = CLOCKS[clock]()
    except KeyError:
        raise ValueError(f"clock must be one of {sorted(CLOCKS)}, got {clock!r}") from None
    for i in range(max(warmup, 0)):
        t0 = time.perf_counter()
        fn()
        clock.sync()
        if i >= 1 and time.perf_counter() - t0 > budget_s / 4:
            break
    clock.sync()
    # Calibrate: one timed call says how many calls make a sample long enough.
    first = clock.sample(fn, 1)
    inner = 1
    if first < min_sample_s:
        inner = min(max_inner, max(1, math.ceil(min_sample_s / max(first, 1e-9))))
    samples = [first] if inner == 1 else []
    t_end = time.perf_counter() + budget_s
    while len(samples) < repeats:
        if len(samples) >= min(min_repeats, repeats) and time.perf_counter() > t_end:
            break
        samples.append(clock.sample(fn, inner))
    return Timing(tuple(samples), inner=inner, clock=clock.name, warmup=warmup)
