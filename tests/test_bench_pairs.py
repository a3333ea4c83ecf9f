"""Side-by-side ratios (bench.timing.measure_interleaved), the busy core of the under-load rows,
the per-call table's "bandwidth from", and where a --quick run writes."""

from __future__ import annotations

import os
import time

import numpy as np
import pandas as pd
import pytest

from bench import cli, report, study_tables, sweep, timing, underload


class DriftingMachine:
    """A synthetic clock: calls advance it by their cost times the machine's slowness, which
    doubles once ``switch_at`` calls have run (a busy neighbour arrives halfway)."""

    def __init__(self, switch_at: int):
        self.now, self.calls, self.switch_at = 0.0, 0, switch_at

    def timer(self) -> float:
        return self.now

    def work(self, cost: float):
        def fn():
            self.calls += 1
            self.now += cost * (2.0 if self.calls > self.switch_at else 1.0)
        return fn


COPY_COST, KERNEL_COST = 1.0e-3, 1.25e-3  # the kernel at 80% of the copy's speed


def test_pairs_stay_right_where_the_old_method_is_off():
    """The old method (the copy timed before the kernel; each point the fastest of two passes)
    sees the machine slow down between the copy and the kernel and reports 40% of the copy; the
    median of side-by-side pairs reports the true 80% with a narrow p20..p80."""
    opts = dict(warmup=1, repeats=20, min_repeats=20, budget_s=1e9, min_sample_s=0.0)
    # old: copy (fast machine), then kernel (slow machine from halfway), two passes each
    m = DriftingMachine(switch_at=2 * 21)  # the copy's warm-up and samples, one pass: still fast
    copy = m.work(COPY_COST)
    kernel = m.work(KERNEL_COST)
    copy_t = min((timing.measure(copy, timer=m.timer, **opts) for _ in range(2)), key=lambda t: t.median)
    kernel_t = min((timing.measure(kernel, timer=m.timer, **opts) for _ in range(2)), key=lambda t: t.median)
    old_pct = 100 * copy_t.median / kernel_t.median
    assert old_pct == pytest.approx(40.0, rel=0.01)  # off by the whole slowdown
    # new: the same drift (2x slower halfway through the calls), pairs taken in turn
    m = DriftingMachine(switch_at=21)
    both = timing.measure_interleaved([m.work(KERNEL_COST), m.work(COPY_COST)], timer=m.timer, **opts)
    stats = timing.ratio_stats(100 * both.ratios(1, 0))
    assert stats["pairs"] == 20
    assert stats["median"] == pytest.approx(80.0, rel=0.01)
    assert 75 <= stats["p20"] <= stats["p80"] <= 85  # one pair straddles the switch: not the p20..p80
    # the absolute medians of the same samples are off (both halves), which is why they are indicative
    assert both.timings[0].median > KERNEL_COST * 1.2 or both.timings[0].p80 > KERNEL_COST * 1.5


def test_interleaved_rounds_alternate_and_use_contexts():
    order = []
    entered = []

    class Ctx:
        def __init__(self, k):
            self.k = k

        def __enter__(self):
            entered.append(self.k)

        def __exit__(self, *exc):
            return False

    fns = [lambda: order.append("a"), lambda: order.append("b")]
    both = timing.measure_interleaved(fns, around=[lambda: Ctx(0), lambda: Ctx(1)], warmup=0, repeats=4,
                                      min_repeats=4, min_sample_s=0.0, budget_s=10)
    assert both.rounds == 4 and order[2:] == list("abbaabba")  # after the calibration calls: ABBA
    assert entered.count(0) == entered.count(1) == 5


def test_pair_columns_and_frame_take_pairs_over_medians():
    base = dict(device="cpu-test-2c", dtype="float32", n=2**20, p=0.5, kind="backend", bytes=8 * 2**20,
                seconds_p20=1e-3, seconds_p80=1e-3, repeats=5, warmup=2, passes=1, source="dropout-bench")
    copy = dict(base, backend="copy-cpu", kind="ceiling", operation="copy", mask_format="none",
                seconds_median=1e-3, p=np.nan)
    # medians say 50% (a slow spell hit the kernel's samples); its pairs say 90% with a wide spread
    kern = dict(base, backend="cpu", operation="forward", mask_format="none", seconds_median=2e-3,
                **sweep.pair_columns([70.0, 80.0, 90.0, 100.0, 110.0]))
    df = report.frame([copy, kern])
    k = df[df["backend"] == "cpu"].iloc[0]
    assert k["pct_of_copy"] == pytest.approx(90.0) and k["pct_method"] == "pairs" and k["copy_pairs"] == 5
    assert k["ratio_spread"] > report.SPREAD
    assert report.SPREAD_MARK in report._pct(k)
    no_pairs = report.frame([copy, dict(kern, pct_of_copy=np.nan, copy_pairs=0)])
    assert no_pairs.loc[no_pairs["backend"] == "cpu", "pct_of_copy"].iloc[0] == pytest.approx(50.0)
    assert (no_pairs.loc[no_pairs["backend"] == "cpu", "pct_method"] == "medians").all()


def test_bandwidth_from():
    ns = [2**8, 2**10, 2**12, 2**14, 2**16]
    per_call = [10e-6, 11e-6, 14e-6, 30e-6, 110e-6]  # a fixed cost, then bandwidth
    assert study_tables.bandwidth_from(ns, per_call) == 2**14
    assert study_tables.bandwidth_from(ns, [10e-6] * 5) is None  # falls 4x per step to the end
    assert study_tables.bandwidth_from(ns[:1], per_call[:1]) is None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_busy_core_never_outlives_the_block(error):
    with pytest.raises(error), underload.busy_core(max_seconds=30) as busy:
        assert _alive(busy.pid)
        pid = busy.pid
        raise error()
    deadline = time.monotonic() + 5
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(pid)


def test_quick_without_out_writes_to_scratch(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DROPOUT_BENCH_REPORTS", str(tmp_path))
    rc = cli.main(["--quick", "--sizes", "2**10", "--backends", "cpu", "--no-peers", "--operations", "forward",
                   "--masks", "none", "--dtypes", "float32", "--no-progress", "--no-plots", "--repeats", "3",
                   "--budget", "0.01"])
    assert rc == 0
    err = capsys.readouterr().err
    written = list(tmp_path.glob("_scratch/*/results.csv"))
    assert len(written) == 1 and not list(tmp_path.glob("cpu-*"))
    assert "--quick without --out writes to" in err and "never replaces a full report" in err
    assert len(pd.read_csv(written[0])) == 1


def test_revisited_points_pool_their_pairs():
    """A revisited point is measured again at the end of the pass: one record, its pairs pooled
    over both visits (``visits`` = 2), the others measured once."""
    from bench import grid, providers

    provs = {p.name: p for p in providers.resolve(["cpu"], peers=False)}
    provs.update({p.name: p for p in providers.resolve(["copy"], peers=False)})
    pts = [grid.Point("cpu", "forward", None, 2**12, 0.5, "float32"),
           grid.Point("cpu", "backward", None, 2**12, 0.5, "float32"),
           grid.Point("copy-cpu", "copy", None, 2**12, 0.0, "float32")]
    recs = sweep.run(pts, provs, repeats=4, budget_s=0.01, progress=False, revisit=[pts[0]])
    by = {(r["backend"], r["operation"]): r for r in recs}
    assert len(recs) == 3
    assert by[("cpu", "forward")]["visits"] == 2 and by[("cpu", "backward")]["visits"] == 1
    assert by[("cpu", "forward")]["copy_pairs"] == 2 * by[("cpu", "backward")]["copy_pairs"] == 8
