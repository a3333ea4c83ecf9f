"""Run a list of grid points and return one record (a dict: a CSV row) per point.

Every ratio is taken side by side: a dropout point is timed in turn with its ceiling (the
copy of the same device, size and dtype; ``np.copy(x)`` for the as-called rows) and, for the
project's fast backends, with the peer (PyTorch's same operation) where the peer runs that
point, one sample of each per round (``bench.timing.measure_interleaved``), the copy and the
peer in separate sets (the peer's threads spin on after its calls and would slow the kernel's
next sample). ``pct_of_copy``
and ``speedup_vs_peer`` are the median of the per-round ratios, with p20, p80 and the number
of pairs; a slow spell of the machine slows both sides of a pair, where a ceiling measured
before the kernel would be off by the whole slowdown. Absolute times and GB/s (each point's own
samples) are indicative.

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

PAIR_COLUMNS = ("pct_of_copy", "pct_of_copy_p20", "pct_of_copy_p80", "copy_pairs",
                "speedup_vs_peer", "speedup_vs_peer_p20", "speedup_vs_peer_p80", "peer_pairs", "peer")


def pair_columns(copy_ratios=(), peer_ratios=(), peer: str = "") -> dict:
    """The side-by-side columns: % of the copy (``100 * bytes ratio * t_copy / t_point`` per
    pair) and speedup over the peer (``t_peer / t_point`` per pair): median, p20, p80, pairs."""
    c, q = timing.ratio_stats(copy_ratios), timing.ratio_stats(peer_ratios)
    return {"pct_of_copy": c["median"], "pct_of_copy_p20": c["p20"], "pct_of_copy_p80": c["p80"],
            "copy_pairs": c["pairs"],
            "speedup_vs_peer": q["median"], "speedup_vs_peer_p20": q["p20"], "speedup_vs_peer_p80": q["p80"],
            "peer_pairs": q["pairs"], "peer": peer if q["pairs"] else ""}


def record(point: grid.Point, t: timing.Timing, provider, timestamp: str, other_load=math.nan,
           passes: int = 1, pass_spread=math.nan, pairs=None, extra=None) -> dict:
    """The raw columns of one measured point (derived columns come in bench.report);
    ``pairs``: :func:`pair_columns`; ``extra``: more columns (load averages, the study)."""
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
        "study": "sweep",
        "ceiling": grid.ceiling_op(point.operation) if point.operation not in grid.COPIES else "",
        **(pairs or {}),
        **env.pinned(),
        **(extra or {}),
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


def partners(point: grid.Point, providers, present) -> dict:
    """{'copy': ceiling point, 'peer': peer point} to time side by side with ``point``: the
    ceiling where the sweep measures it (same device, size and dtype); the peer (PyTorch on the
    same device, the same work) for the project's fast backends (not the NumPy reference, which
    is the specification), where the sweep measures that peer point too."""
    if point.operation in grid.COPIES:
        return {}
    prov = providers[point.provider]
    out = {}
    ceiling = grid.Point(f"copy-{prov.device}", grid.ceiling_op(point.operation), None, point.n, 0.0, point.dtype)
    if ceiling in present:
        out["copy"] = ceiling
    if prov.kind == "backend" and prov.name != "reference":
        peer = grid.Point(f"torch-{prov.device}", point.operation, point.mask_format, point.n, point.p, point.dtype)
        if peer in present:
            out["peer"] = peer
    return out


def _measure_point(point, provider, *, repeats, warmup, budget_s, waiter, retries, providers=None, present=()):
    """(Timing, other processes' load, {'copy': per-pair % of copy, 'peer': per-pair speedup})
    of one point, timed side by side with its :func:`partners`."""
    fn = provider.prepare(point.operation, point.mask_format, point.n, point.p, point.dtype)
    with_ = partners(point, providers, present) if providers else {}
    roles = list(with_)
    fns, clocks = [fn], [provider.clock]
    for role in roles:
        q = with_[role]
        fns.append(providers[q.provider].prepare(q.operation, q.mask_format, q.n, q.p, q.dtype))
        clocks.append(providers[q.provider].clock)
    for name in {provider.name, *(with_[r].provider for r in roles)}:
        (providers[name] if providers else provider).synchronize()
    for _ in range(1 + max(retries, 0)):
        idle = waiter(provider)
        meter = load.LoadMeter().start()
        ratios = {}
        if roles:
            # One interleaved set per partner: the peer's own thread pool spins on after each of
            # its calls (PyTorch's OpenMP workers), so in a set of three the kernel sample after
            # a peer call, and so its ratio to the copy, paid for the peer's threads (measured:
            # 71% of np.copy as called at 2^24 beside PyTorch, 99% without it, same process).
            t = None
            for k, role in enumerate(roles, start=1):
                pair = timing.measure_interleaved(
                    [fns[0], fns[k]], clocks=[clocks[0], clocks[k]], warmup=warmup, repeats=repeats,
                    min_repeats=min(5, repeats), budget_s=_budget(point.n, budget_s) * 2)
                r = pair.ratios(1, 0)
                if role == "copy":
                    q = with_[role]
                    r = 100.0 * r * (traffic.bytes_moved(point.operation, point.mask_format, point.n, point.dtype)
                                     / traffic.bytes_moved(q.operation, None, q.n, q.dtype))
                ratios[role] = r
                if t is None:  # the point's own time: from its set with the copy, where it has one
                    t = pair.timings[0]
        else:
            t = timing.measure(
                fn, clock=provider.clock, warmup=warmup, repeats=repeats,
                min_repeats=min(5, repeats), budget_s=_budget(point.n, budget_s),
            )
        other = meter.stop(min_window=0.1)
        # Measure again only when the machine had gone quiet and got busy meanwhile.
        if provider.device != "cpu" or not other >= load.BUSY or not idle:
            break
    return t, other, ratios


def run(points, providers, *, repeats: int = 25, warmup: int = timing.WARMUP, budget_s: float = 1.0,
        passes: int = 1, wait_idle_s: float = 0.0, wait_total_s: float = 600.0, retries: int = 0,
        progress: bool = True, log=print, revisit=()) -> list[dict]:
    """Time every point ``passes`` times and keep each point's fastest pass (by median) for
    its absolute time; its side-by-side ratios (:func:`partners`) pool the pairs of every pass.

    ``revisit``: points (of ``points``) timed once more at the end of each pass, minutes after
    their first visit, their pairs pooled with the first: the memory bandwidth of a shared
    machine moves by 2x from one minute to the next (the copy at 2^24 float32 took 2.7 ms in one
    run and about 1.4 ms, paired, in the next), and a headline figure should span more than one
    minute of it.

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
    present = set(points)
    failed = set()
    revisit = [pt for pt in dict.fromkeys(revisit) if pt in present]
    bar = tqdm(total=(len(points) + len(revisit)) * passes, unit="pt", disable=not progress, dynamic_ncols=True)
    for k in range(passes):
        last_key = None
        for point in [*points, *revisit]:
            bar.update(1)
            if point in failed:
                continue
            bar.set_postfix_str(f"pass {k + 1}/{passes} {point.id}", refresh=False)
            if (point.n, point.dtype) != last_key:
                gc.collect()
                last_key = (point.n, point.dtype)
            provider = providers[point.provider]
            try:
                before = env.loadavg()
                t, other, ratios = _measure_point(
                    point, provider, repeats=repeats, warmup=warmup, budget_s=budget_s,
                    waiter=waiter, retries=retries, providers=providers, present=present - failed)
                results.setdefault(point, []).append((t, other, ratios, before, env.loadavg()))
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
    for point in dict.fromkeys(points):
        runs = results.get(point)
        if not runs or point in failed:
            continue
        medians = [r[0].median for r in runs]
        best, other, _, before, after = min(runs, key=lambda r: r[0].median)
        spread = max(medians) / min(medians) if min(medians) > 0 else math.nan
        with_ = partners(point, providers, present)
        pooled = {role: [x for r in runs for x in r[2].get(role, ())] for role in ("copy", "peer")}
        pairs = pair_columns(pooled["copy"], pooled["peer"], with_["peer"].provider if "peer" in with_ else "")
        records.append(record(point, best, providers[point.provider], timestamp, other,
                              passes=passes, pass_spread=spread, pairs=pairs,
                              extra={"loadavg_before": before, "loadavg_after": after, "visits": len(runs)}))
    return records


def elapsed(start: float) -> str:
    s = time.perf_counter() - start
    return f"{s:.1f} s" if s < 120 else f"{s / 60:.1f} min"
