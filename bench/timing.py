"""The one timing loop: warm-up, then repeated samples, summarized as median, p20 and p80.

CPU providers are timed with the host clock (``time.perf_counter``).

CUDA providers are timed with CUDA events recorded around the calls on the default stream,
after a warm-up and a synchronize: device time. A Python call into numba.cuda costs 40 to
200 µs of host time (argument checks, a mask allocation, the launch), which events would
count as idle GPU time whenever the host lags the GPU. So, as ``triton.testing.do_bench``
hides it behind a cache flush, each sample first launches a one-thread *spin* kernel that
keeps the GPU busy for about twice the host time of the calls: the start event, the calls
and the end event are all queued before the GPU reaches them. Deallocations are deferred
during a sample (a ``cuMemFree`` would wait for the GPU). The host time per call is kept
too (``Timing.host_seconds``): it is what a small size really costs from Python.

Every sample is the mean over ``inner`` back-to-back calls. ``inner`` is calibrated so a
sample lasts at least ``min_sample_s``: one call on 1 Ki elements takes a few microseconds,
too close to the clock's resolution and to the cost of reading it.

With a ``setup`` (the in-place points: it restores the input the call overwrites), each
call is preceded by an untimed ``setup()`` and timed on its own: a sample is the mean of
``inner`` such single-call times (host clock), or of ``inner`` event pairs around single
calls, each queued after its setup (CUDA clocks).
"""

from __future__ import annotations

import contextlib
import functools
import math
import time
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Timing:
    """All samples of one measurement (seconds per call) and how they were taken."""

    samples: tuple[float, ...]
    inner: int = 1
    clock: str = "perf_counter"
    warmup: int = 0
    host_seconds: float = float("nan")  # GPU clocks: median host time to issue one call

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


class _HostClock:
    name = "perf_counter"

    def __init__(self, timer=None):
        # ``timer``: a stand-in for time.perf_counter (the tests' synthetic clocks)
        self.timer = timer or time.perf_counter

    def sample(self, fn, inner: int, setup=None) -> float:
        timer = self.timer
        if setup is not None:
            total = 0.0
            for _ in range(inner):
                setup()
                t0 = timer()
                fn()
                total += timer() - t0
            return total / inner
        t0 = timer()
        for _ in range(inner):
            fn()
        return (timer() - t0) / inner

    def sync(self) -> None:
        pass


# --- GPU -------------------------------------------------------------------------------

@functools.cache
def _spin_kernel():
    from numba import cuda

    @cuda.jit
    def spin(iters, out):
        # A dependent multiply-add chain on one thread: a fixed time per iteration.
        acc = out[0]
        for _ in range(iters):
            acc = acc * np.uint32(1664525) + np.uint32(1013904223)
        out[0] = acc

    return spin


@functools.cache
def _spin_seconds_per_iter() -> float:
    """Calibrate the spin kernel once with events."""
    from numba import cuda

    spin, buf = _spin_kernel(), cuda.to_device(np.ones(1, dtype=np.uint32))
    spin[1, 1](1000, buf)  # compile
    start, end = cuda.event(), cuda.event()
    iters = 1 << 20
    start.record()
    spin[1, 1](iters, buf)
    end.record()
    end.synchronize()
    return max(start.elapsed_time(end) / 1e3 / iters, 1e-10)


class _Spinner:
    """Keeps the GPU busy for a while, on the default stream."""

    def __init__(self):
        from numba import cuda

        self._per_iter = _spin_seconds_per_iter()
        self._buf = cuda.to_device(np.ones(1, dtype=np.uint32))
        self._spin = _spin_kernel()

    def __call__(self, seconds: float) -> None:
        iters = int(min(max(seconds, 20e-6), 0.5) / self._per_iter)
        self._spin[1, 1](min(iters, 2**31 - 1), self._buf)


class _CudaEvents:
    """numba.cuda events, behind a spin kernel (see the module's docstring)."""

    name = "cuda-event"

    def __init__(self):
        from numba import cuda

        self._cuda = cuda
        self._start = cuda.event()  # timing=True is the default (the simulator takes no argument)
        self._end = cuda.event()
        # The CUDA simulator's events exist but always report -1 ms: time it on the host.
        self._simulated = type(self._start).__module__.startswith("numba.cuda.simulator")
        if self._simulated:
            self.name = "perf_counter (cuda simulator)"
            self._spinner = None
        else:
            self._spinner = _Spinner()
        self._host_estimate = 1e-3  # seconds to issue one call, until measured
        self.host_samples: list[float] = []

    def _record(self, event) -> None:
        event.record()

    def _elapsed(self) -> float:
        return self._start.elapsed_time(self._end) / 1e3

    def _deferred(self):
        return self._cuda.defer_cleanup()

    def sample(self, fn, inner: int, setup=None) -> float:
        if setup is not None:
            return sum(self._sample_one(fn, setup) for _ in range(inner)) / inner
        if self._simulated:
            t0 = time.perf_counter()
            for _ in range(inner):
                fn()
            self.sync()
            return (time.perf_counter() - t0) / inner
        with self._deferred():
            self._spinner(2.0 * self._host_estimate * inner + 50e-6)
            self._record(self._start)
            t0 = time.perf_counter()
            for _ in range(inner):
                fn()
            host = (time.perf_counter() - t0) / inner
            self._record(self._end)
            self._end.synchronize()
        self._host_estimate = host
        self.host_samples.append(host)
        return self._elapsed() / inner

    def _sample_one(self, fn, setup) -> float:
        """One call after its (untimed) setup, which is queued on the stream before the start
        event: the events time the call alone."""
        if self._simulated:
            setup()
            self.sync()
            t0 = time.perf_counter()
            fn()
            self.sync()
            return time.perf_counter() - t0
        with self._deferred():
            self._spinner(2.0 * self._host_estimate + 50e-6)
            setup()
            self._record(self._start)
            t0 = time.perf_counter()
            fn()
            host = time.perf_counter() - t0
            self._record(self._end)
            self._end.synchronize()
        self._host_estimate = host
        self.host_samples.append(host)
        return self._elapsed()

    def sync(self) -> None:
        self._cuda.synchronize()


class _TorchCudaEvents(_CudaEvents):
    """CUDA events through PyTorch, for PyTorch's kernels on its current stream."""

    name = "torch-cuda-event"

    def __init__(self):
        import torch

        super().__init__()
        self._torch = torch
        self.name = "torch-cuda-event"
        self._start = torch.cuda.Event(enable_timing=True)
        self._end = torch.cuda.Event(enable_timing=True)

    def _elapsed(self) -> float:
        return self._start.elapsed_time(self._end) / 1e3

    def _deferred(self):
        return contextlib.nullcontext()

    def sync(self) -> None:
        self._torch.cuda.synchronize()


CLOCKS = {"host": _HostClock, "cuda": _CudaEvents, "torch-cuda": _TorchCudaEvents}
WARMUP = 2  # untimed calls before timing: the first compiles (Numba) or initializes (PyTorch)


def warm_up(fn, sync, calls: int = WARMUP, budget_s: float = math.inf, setup=None) -> None:
    """``calls`` untimed calls of ``fn`` (compilation, first-touch page faults, caches), each
    after ``setup()`` (if given) and followed by ``sync()``; after the second, stop once one
    call took over ``budget_s / 4``."""
    for i in range(max(calls, 0)):
        if setup is not None:
            setup()
        t0 = time.perf_counter()
        fn()
        sync()
        if i >= 1 and time.perf_counter() - t0 > budget_s / 4:
            break
    sync()


def measure(
    fn,
    *,
    clock: str = "host",
    warmup: int = WARMUP,
    repeats: int = 25,
    min_repeats: int = 3,
    budget_s: float = 1.0,
    min_sample_s: float = 2e-4,
    max_inner: int = 1000,
    setup=None,
    timer=None,
) -> Timing:
    """Time ``fn()`` (no arguments, result ignored) with ``clock``: 'host' (perf_counter),
    'cuda' (numba.cuda events) or 'torch-cuda' (torch.cuda events).

    ``warmup`` untimed calls first (:func:`warm_up`), then up to ``repeats`` samples,
    stopping early once ``budget_s`` seconds of wall time have been spent and at least
    ``min_repeats`` samples exist, so that big, slow points do not dominate a sweep.
    ``setup`` (default: ``fn.setup`` where ``fn`` has one) runs untimed before every call.
    ``timer`` replaces ``time.perf_counter`` on the host clock (tests).
    """
    if setup is None:
        setup = getattr(fn, "setup", None)
    if repeats < 1:
        raise ValueError("repeats must be >= 1")
    clk = make_clock(clock, timer)
    first, inner = _calibrate(fn, clk, warmup, budget_s, setup, min_sample_s, max_inner)
    samples = [first] if inner == 1 else []
    t_end = time.perf_counter() + budget_s
    while len(samples) < repeats:
        if len(samples) >= min(min_repeats, repeats) and time.perf_counter() > t_end:
            break
        samples.append(clk.sample(fn, inner, setup))
    return _timing(samples, inner, clk, warmup)


def _calibrate(fn, clk, warmup, budget_s, setup, min_sample_s, max_inner) -> tuple[float, int]:
    """Warm up, then one timed call says how many calls make a sample long enough:
    ``(first call's seconds, inner)``."""
    warm_up(fn, clk.sync, warmup, budget_s, setup=setup)
    first = clk.sample(fn, 1, setup)
    inner = 1
    if first < min_sample_s:
        inner = min(max_inner, max(1, math.ceil(min_sample_s / max(first, 1e-9))))
    return first, inner


def _timing(samples, inner, clk, warmup) -> Timing:
    host = getattr(clk, "host_samples", None)
    return Timing(tuple(samples), inner=inner, clock=clk.name, warmup=warmup,
                  host_seconds=float(np.median(host)) if host else float("nan"))


def make_clock(clock: str = "host", timer=None):
    """A clock object of :data:`CLOCKS` (``timer``: the host clock's time source)."""
    if clock == "host":
        return _HostClock(timer)
    try:
        return CLOCKS[clock]()
    except KeyError:
        raise ValueError(f"clock must be one of {sorted(CLOCKS)}, got {clock!r}") from None


# --- side by side ----------------------------------------------------------------------

@dataclass(frozen=True)
class Interleaved:
    """Samples of several callables taken in turn: ``timings[i].samples[k]`` is callable
    ``i``'s sample in round ``k``. A ratio of two of them is taken round by round
    (:meth:`ratios`), so a machine that slows down for a while slows both sides of a pair."""

    timings: tuple[Timing, ...]

    @property
    def rounds(self) -> int:
        return len(self.timings[0].samples) if self.timings else 0

    def ratios(self, num: int, den: int) -> np.ndarray:
        """Per-round ``time[num] / time[den]`` (seconds per call)."""
        a = np.asarray(self.timings[num].samples, dtype=float)
        b = np.asarray(self.timings[den].samples, dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            return a / b


def ratio_stats(ratios) -> dict:
    """{'median', 'p20', 'p80', 'pairs'} of per-pair ratios (NaN and 0 pairs when empty)."""
    r = np.asarray(ratios, dtype=float)
    r = r[np.isfinite(r)]
    if not r.size:
        return {"median": math.nan, "p20": math.nan, "p80": math.nan, "pairs": 0}
    return {"median": float(np.median(r)), "p20": float(np.percentile(r, 20)),
            "p80": float(np.percentile(r, 80)), "pairs": int(r.size)}


def measure_interleaved(
    fns,
    *,
    clocks=None,
    warmup: int = WARMUP,
    repeats: int = 25,
    min_repeats: int = 3,
    budget_s: float = 1.0,
    min_sample_s: float = 2e-4,
    max_inner: int = 1000,
    setups=None,
    around=None,
    timer=None,
) -> Interleaved:
    """Time the callables ``fns`` side by side: warm each up, calibrate each one's ``inner``
    (as :func:`measure`), then take rounds of one sample of each, in turn (ABAB..., the order
    reversed every other round: ABBA, so a steady drift within a round cancels), until
    ``repeats`` rounds, or ``budget_s`` of wall time once ``min_repeats`` rounds exist.

    ``clocks``: one clock name per callable (default 'host'); ``setups``: untimed calls before
    each call (default each callable's ``setup`` attribute); ``around``: per callable, None or
    a zero-argument factory of a context manager entered (untimed) around each of its samples
    (e.g. one that sets the thread count); ``timer``: the host clocks' time source.
    """
    fns = list(fns)
    k = len(fns)
    if not k:
        raise ValueError("nothing to time")
    if repeats < 1:
        raise ValueError("repeats must be >= 1")
    clocks = list(clocks) if clocks is not None else ["host"] * k
    setups = list(setups) if setups is not None else [getattr(f, "setup", None) for f in fns]
    around = list(around) if around is not None else [None] * k
    clks = [make_clock(c, timer) for c in clocks]

    def ctx(i):
        return around[i]() if around[i] is not None else contextlib.nullcontext()

    inners = []
    for i, (fn, clk) in enumerate(zip(fns, clks)):
        with ctx(i):
            inners.append(_calibrate(fn, clk, warmup, budget_s, setups[i], min_sample_s, max_inner)[1])
    samples = [[] for _ in fns]
    t_end = time.perf_counter() + budget_s
    rounds = 0
    while rounds < repeats:
        if rounds >= min(min_repeats, repeats) and time.perf_counter() > t_end:
            break
        order = range(k) if rounds % 2 == 0 else range(k - 1, -1, -1)
        for i in order:
            with ctx(i):
                samples[i].append(clks[i].sample(fns[i], inners[i], setups[i]))
        rounds += 1
    return Interleaved(tuple(_timing(samples[i], inners[i], clk, warmup) for i, clk in enumerate(clks)))
