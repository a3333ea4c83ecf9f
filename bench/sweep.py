"""Run a list of grid points and return one record (a dict: a CSV row) per point.

The machines are shared and noisy: the development VM shows slowdowns of a whole block of
consecutive points (every call of a parallel kernel taking one more ~8 ms scheduler slice
for ten seconds or so) that neither the other processes' load nor the point itself
explains. So the sweep can run in several *passes* over the whole grid and keep, for each
point, the pass with the lowest median: a slowdown is additive, and two passes minutes
apart rarely both hit the same point. ``pass_spread`` (slowest over fastest pass median)
shows where it happened.
"""

from __future__ import annotations

import datetime
import gc
import math
import time
import traceback

from reference.conformance.protocol import Unsupported

from . import env, grid, inputs, load, timing, traffic


def record(point: grid.Point, t: timing.Timing, provider, timestamp: str, other_load=math.nan,
           passes: int = 1, pass_spread=math.nan) -> dict:
    """The raw columns of one measured point (derived columns come in bench.report)."""
    return {
        "backend": point.provider,
        "kind": provider.kind,
        "operation": point.operation,
        "mask_format": point.mask_label,
        "dtype": point.dtype,
        "n": point.n,
        "p": point.p if point.operation != "copy" else math.nan,
        "seconds_median": t.median,
        "seconds_p20": t.p20,
        "seconds_p80": t.p80,
        "repeats": t.repeats,
        "inner": t.inner,
        "clock": t.clock,
        "warmup": t.warmup,
        "host_seconds_per_call": t.host_seconds,
        "bytes": traffic.bytes_moved(point.operation, point.mask_format, point.n, point.dtype),
        "device": provider.device_name,
        **env.versions(),
        "threads": provider.threads(),
        "timestamp": timestamp,
        "other_load": other_load,
        "passes": passes,
        "pass_spread": pass_spread,
        "source": "dropout-bench",
    }


def _budget(n: int, budget_s: float) -> float:
    """Seconds to spend sampling one point: less on small sizes, where samples are cheap."""
    return budget_s if n >= 2**20 else budget_s / 2


class _Waiter:
    """Waits for the machine to go quiet before CPU points, within a total allowance."""

    def __init__(self, per_point_s: float, total_s: float):
        self.per_point_s, self.left = per_point_s, total_s

    def __call__(self, provider) -> bool:
        if provider.device != "cpu" or self.per_point_s <= 0 or self.left <= 0:
            return False
        t0 = time.perf_counter()
        idle = load.wait_until_idle(min(self.per_point_s, self.left), load.BUSY)
        self.left -= time.perf_counter() - t0
        return idle


def _measure_point(point, provider, *, repeats, warmup, budget_s, waiter, retries):
    """(Timing, other processes' load) of one point."""
    fn = provider.prepare(point.operation, point.mask_format, point.n, point.p, point.dtype)
    provider.synchronize()
    for _ in range(1 + max(retries, 0)):
        idle = waiter(provider)
        meter = load.LoadMeter().start()
        t = timing.measure(
            fn, clock=provider.clock, warmup=warmup, repeats=repeats,
            min_repeats=min(5, repeats), budget_s=_budget(point.n, budget_s),
        )
        other = meter.stop(min_window=0.1)
        # Measure again only when the machine had gone quiet and got busy meanwhile.
        if provider.device != "cpu" or not other >= load.BUSY or not idle:
            break
    return t, other


def run(points, providers, *, repeats: int = 25, warmup: int = timing.WARMUP, budget_s: float = 1.0,
        passes: int = 1, wait_idle_s: float = 0.0, wait_total_s: float = 600.0, retries: int = 0,
        progress: bool = True, log=print) -> list[dict]:
    """Time every point ``passes`` times and keep each point's fastest pass (by median).

    A point that fails is logged and left out (one an ``--impl`` does not support, raising
    ``Unsupported``, is logged as such). With ``wait_idle_s`` > 0, wait up to that
    long before each CPU point for other processes to go quiet (``wait_total_s`` in all,
    then no more waiting), and re-measure a CPU point they disturbed after the machine had
    gone quiet, up to ``retries`` times. Every record keeps the other processes' load
    during its kept measurement (``other_load``, in cores).
    """
    from tqdm.auto import tqdm

    timestamp = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    passes = max(int(passes), 1)
    waiter = _Waiter(wait_idle_s, wait_total_s)
    results: dict[grid.Point, list] = {}
    failed = set()
    bar = tqdm(total=len(points) * passes, unit="pt", disable=not progress, dynamic_ncols=True)
    for k in range(passes):
        last_key = None
        for point in points:
            bar.update(1)
            if point in failed:
                continue
            bar.set_postfix_str(f"pass {k + 1}/{passes} {point.id}", refresh=False)
            if (point.n, point.dtype) != last_key:
                gc.collect()
                last_key = (point.n, point.dtype)
            provider = providers[point.provider]
            try:
                results.setdefault(point, []).append(_measure_point(
                    point, provider, repeats=repeats, warmup=warmup, budget_s=budget_s,
                    waiter=waiter, retries=retries))
            except Unsupported as exc:  # an --impl without that capability: not an error
                failed.add(point)
                msg = f"not supported, skipped {point.id}: {exc}"
                (tqdm.write if progress else log)(msg)
            except Exception as exc:  # one broken point must not lose the sweep
                failed.add(point)
                msg = f"skipped {point.id}: {type(exc).__name__}: {exc}"
                (tqdm.write if progress else log)(msg)
                if log is not None and not progress:
                    log(traceback.format_exc(limit=3))
        inputs.release_inputs()
    bar.close()
    records = []
    for point in points:
        runs = results.get(point)
        if not runs or point in failed:
            continue
        medians = [t.median for t, _ in runs]
        best, other = min(runs, key=lambda r: r[0].median)
        spread = max(medians) / min(medians) if min(medians) > 0 else math.nan
        records.append(record(point, best, providers[point.provider], timestamp, other,
                              passes=len(runs), pass_spread=spread))
    return records


def elapsed(start: float) -> str:
    s = time.perf_counter() - start
    return f"{s:.1f} s" if s < 120 else f"{s / 60:.1f} min"
