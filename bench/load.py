"""CPU used by *other* processes while a point is measured (Linux ``/proc``; NaN elsewhere).

On a 2-core machine a parallel kernel whose second core is taken by another process waits
for the scheduler: every call then takes a time slice (about 8 ms here), whatever its size.
The sweep records the other processes' load per point (``other_load``, in cores), can wait
for the machine to go quiet before a point, and re-measures a point that was disturbed.
"""

from __future__ import annotations

import math
import os
import time

#: Cores used by other processes above which a CPU point counts as disturbed.
BUSY = 0.25

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _busy_ticks():
    """(all CPUs' busy ticks, this process's ticks), or None without /proc."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
        with open("/proc/self/stat") as f:
            own = f.read().rsplit(")", 1)[1].split()
    except (OSError, ValueError, IndexError):
        return None
    user, nice, system, idle, iowait, irq, softirq = fields[:7]
    steal = fields[7] if len(fields) > 7 else 0
    busy = user + nice + system + irq + softirq + steal
    mine = int(own[11]) + int(own[12])  # utime, stime (fields 14 and 15 of the whole line)
    return busy, mine


class LoadMeter:
    """Cores' worth of CPU used by other processes between ``start()`` and ``stop()``."""

    def start(self) -> LoadMeter:
        self._t0, self._ticks0 = time.perf_counter(), _busy_ticks()
        return self

    def stop(self, min_window: float = 0.2) -> float:
        """Other processes' cores since ``start()``. The kernel counts CPU time in ticks of
        10 ms, so a window shorter than ``min_window`` is stretched (by sleeping) to it: the
        figure then says whether the machine was busy around the measurement."""
        short = min_window - (time.perf_counter() - self._t0)
        if short > 0:
            time.sleep(short)
        ticks = _busy_ticks()
        dt = time.perf_counter() - self._t0
        if ticks is None or self._ticks0 is None or dt <= 0:
            return math.nan
        other = (ticks[0] - self._ticks0[0]) - (ticks[1] - self._ticks0[1])
        return max(other, 0) / _TICK / dt


def other_load(interval: float = 0.3) -> float:
    meter = LoadMeter().start()
    time.sleep(interval)
    return meter.stop()


def wait_until_idle(max_wait_s: float, threshold: float = BUSY, interval: float = 0.2) -> bool:
    """Sleep until other processes use less than ``threshold`` cores; False if ``max_wait_s``
    passed first."""
    t0 = time.perf_counter()
    while True:
        load = other_load(interval)
        if math.isnan(load) or load < threshold:
            return True
        if time.perf_counter() - t0 >= max_wait_s:
            return False
