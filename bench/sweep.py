"""Run a list of grid points and return one record (a dict: a CSV row) per point."""

from __future__ import annotations

import datetime
import gc
import time
import traceback

from . import env, grid, providers as prov_mod, timing, traffic


def record(point: grid.Point, t: timing.Timing, provider, timestamp: str) -> dict:
    """The raw columns of one measured point (derived columns come in bench.report)."""
    return {
        "backend": point.provider,
        "kind": provider.kind,
        "operation": point.operation,
        "mask_format": point.mask_label,
        "dtype": point.dtype,
        "n": point.n,
        "p": point.p if point.operation != "copy" else float("nan"),
        "seconds_median": t.median,
        "seconds_p20": t.p20,
        "seconds_p80": t.p80,
        "repeats": t.repeats,
        "inner": t.inner,
        "clock": t.clock,
        "bytes": traffic.bytes_moved(point.operation, point.mask_format, point.n, point.dtype),
        "device": provider.device_name,
        **env.versions(),
        "threads": provider.threads(),
        "timestamp": timestamp,
        "source": "dropout-bench",
    }


def _budget(n: int, budget_s: float) -> float:
    """Seconds to spend sampling one point: less on small sizes, where samples are cheap."""
    return budget_s if n >= 2**20 else budget_s / 2


def run(points, providers, *, repeats: int = 25, warmup: int = 2, budget_s: float = 1.0,
        progress: bool = True, log=print) -> list[dict]:
    """Time every point; a point that fails is logged and left out."""
    from tqdm.auto import tqdm

    timestamp = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    records = []
    bar = tqdm(points, unit="pt", disable=not progress, dynamic_ncols=True)
    last_key = None
    for point in bar:
        provider = providers[point.provider]
        bar.set_postfix_str(point.id, refresh=False)
        key = (point.n, point.dtype)
        if key != last_key:
            gc.collect()
            last_key = key
        try:
            fn = provider.prepare(point.operation, point.mask_format, point.n, point.p, point.dtype)
            provider.synchronize()
            t = timing.measure(
                fn, clock=provider.clock, warmup=warmup, repeats=repeats,
                min_repeats=min(3, repeats), budget_s=_budget(point.n, budget_s),
            )
            del fn
        except Exception as exc:  # noqa: BLE001 - one broken point must not lose the sweep
            msg = f"skipped {point.id}: {type(exc).__name__}: {exc}"
            (tqdm.write if progress else log)(msg)
            if log is not None and not progress:
                log(traceback.format_exc(limit=3))
            continue
        records.append(record(point, t, provider, timestamp))
    prov_mod.release_inputs()
    return records


def elapsed(start: float) -> str:
    s = time.perf_counter() - start
    return f"{s:.1f} s" if s < 120 else f"{s / 60:.1f} min"
