"""The "under load" rows: the CPU kernel and the copy with every thread and with one thread,
while a busy process of our own spins on one core.

On a machine whose other processes keep a core busy, a parallel call waits for a scheduler
quantum whenever one of its threads lands on the busy core (p80 of 2-thread calls about 12 ms
at 2^14..2^20 on the 2-core development VM, against 0.06..0.93 ms with one thread). These
rows make that load ourselves, so that it is the same in every run: :func:`busy_core` starts
one spinning process (pinned to the last core this process may use, where
``os.sched_setaffinity`` exists) and always stops it, on return, on an exception and on
KeyboardInterrupt; the child also stops by itself when its parent is gone or after
``max_seconds``. Inside it, each size times four callables side by side (one sample each per
round, ``bench.timing.measure_interleaved``, one call per sample): the ``cpu`` forward
(mask not kept, ``out=``) with all threads and with one (``numba.set_num_threads``, restored
afterwards), and the copy likewise. A row per callable (``study = under-load``, the
``threads`` column says which), the all-threads kernel row carrying the per-pair ratio of its
time to the one-thread time (``vs_1_thread``, median, p20, p80).
"""

from __future__ import annotations

import contextlib
import datetime
import math
import os
import subprocess
import sys
from dataclasses import dataclass

from . import env, grid, load, sweep, timing

SIZES = grid.pow2_range(14, 20, 2)
QUICK_SIZES = (2**14, 2**20)
OPERATION = ("forward", None)  # the kernel's row: forward, mask not kept, out= given

_SPIN = """\
import os, time
parent, end = os.getppid(), time.monotonic() + {seconds!r}
while os.getppid() == parent and time.monotonic() < end:
    for _ in range(100000):
        pass
"""


@dataclass(frozen=True)
class Busy:
    pid: int
    core: int | None  # the core it is pinned to (None: not pinned)


@contextlib.contextmanager
def busy_core(max_seconds: float = 900.0):
    """A spinning child process on one core for the time of the ``with`` block (see the
    module's docstring); yields a :class:`Busy`."""
    proc = subprocess.Popen([sys.executable, "-c", _SPIN.format(seconds=float(max_seconds))],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        core = None
        with contextlib.suppress(AttributeError, OSError):
            core = sorted(os.sched_getaffinity(0))[-1]
            os.sched_setaffinity(proc.pid, {core})
        yield Busy(proc.pid, core)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _threads_ctx(numba, k: int, restore: int):
    @contextlib.contextmanager
    def ctx():
        numba.set_num_threads(k)
        try:
            yield
        finally:
            numba.set_num_threads(restore)
    return ctx


def run(providers, sizes=SIZES, *, repeats: int = 60, budget_s: float = 0.6, warmup: int = timing.WARMUP,
        dtype: str = "float32", p: float = 0.5, log=print) -> list[dict]:
    """The under-load records (empty, with a line to ``log``, where there is no ``cpu`` backend,
    no ``copy-cpu`` or a single thread)."""
    return _thread_rows(providers, sizes, "under-load", busy=True, repeats=repeats, budget_s=budget_s,
                        warmup=warmup, dtype=dtype, p=p, log=log)


#: The idle rows' size: large enough for the memory bandwidth, not the hand-off, to decide.
IDLE_SIZES = (2**24,)
QUICK_IDLE_SIZES = (2**20,)


def run_idle(providers, sizes=IDLE_SIZES, *, repeats: int = 25, budget_s: float = 0.6, warmup: int = timing.WARMUP,
             dtype: str = "float32", p: float = 0.5, log=print) -> list[dict]:
    """The same four callables with no busy process of ours (``study = idle-threads``): what a
    second thread gives when the cores are free."""
    return _thread_rows(providers, sizes, "idle-threads", busy=False, repeats=repeats, budget_s=budget_s,
                        warmup=warmup, dtype=dtype, p=p, log=log)


def _thread_rows(providers, sizes, study: str, *, busy: bool, repeats: int, budget_s: float, warmup: int,
                 dtype: str, p: float, log) -> list[dict]:
    import numba

    kernel, copy = providers.get("cpu"), providers.get("copy-cpu")
    if kernel is None:
        return []
    most = int(numba.get_num_threads())
    if most < 2:
        log(f"dropout-bench: no {study} rows: Numba runs one thread here")
        return []
    timestamp = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    records = []
    with busy_core() if busy else contextlib.nullcontext() as spinner:
        for n in sizes:
            specs = [(kernel, grid.Point("cpu", *OPERATION, n, p, dtype))]
            if copy is not None:
                specs.append((copy, grid.Point("copy-cpu", "copy", None, n, 0.0, dtype)))
            fns, around, who = [], [], []
            for prov, pt in specs:
                fn = prov.prepare(pt.operation, pt.mask_format, pt.n, pt.p, pt.dtype)
                for k in (most, 1):
                    fns.append(fn)
                    around.append(_threads_ctx(numba, k, most))
                    who.append((prov, pt, k))
            before = env.loadavg()
            meter = load.LoadMeter().start()
            # busy: one call per sample, so that p80 is the p80 of calls
            both = timing.measure_interleaved(fns, around=around, warmup=warmup, repeats=repeats,
                                              min_repeats=min(5, repeats), budget_s=budget_s,
                                              **({"min_sample_s": 0.0} if busy else {}))
            other = meter.stop(min_window=0.1)
            after = env.loadavg()
            for i, (prov, pt, k) in enumerate(who):
                copy_i = next((j for j, (q, qpt, kk) in enumerate(who) if qpt.operation == "copy" and kk == k), None)
                copy_r = () if copy_i is None or copy_i == i else 100.0 * both.ratios(copy_i, i)
                rec = sweep.record(pt, both.timings[i], prov, timestamp, other, pairs=sweep.pair_columns(copy_r),
                                   extra={"loadavg_before": before, "loadavg_after": after})
                rec.update(threads=k, numba_threads=k, study=study,
                           busy_core=spinner.core if spinner else None, busy_processes=1 if busy else 0)
                ratio = timing.ratio_stats(both.ratios(i, i + 1)) if k == most else None
                rec.update({
                    "vs_1_thread": ratio["median"] if ratio else math.nan,
                    "vs_1_thread_p20": ratio["p20"] if ratio else math.nan,
                    "vs_1_thread_p80": ratio["p80"] if ratio else math.nan,
                })
                records.append(rec)
    return records
