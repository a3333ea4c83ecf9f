"""How a CPU kernel call uses more than one core: our own split of the work, never Numba's pool.

A call is cut into chunks (whole tiles: the bits never depend on the cut). The calling thread
and the pool's worker threads claim chunks one at a time from a shared counter and run the
serial (``nogil``) compilation of the kernel on each. A worker that the OS has not scheduled
yet claims nothing, so the caller does its share instead of waiting for it: on a machine whose
cores are held by other work (a test run, PyTorch's own pool, a Dask worker), a call costs
about what one thread costs, not a scheduler quantum (~8 ms), which is what a fork-join pool
(Numba's OpenMP, TBB or workqueue layers: every thread must arrive) costs when one of its
threads waits for a core. No setting of Numba, OpenMP or any other library is touched.

* **threads**: ``numba.get_num_threads()`` of the calling thread (``numba.set_num_threads``
  chooses it, per thread, as for Numba's own parallel code): 1 runs serially;
* **small calls**: below :data:`PARALLEL_MIN` elements waking a worker costs more than it saves;
* **concurrent Python threads**: one call at a time shares the workers; another thread's call
  meanwhile runs serially in its own thread (the same bits);
* **busy cores**: a call shares its work only with as many workers as there are cores that no
  runnable thread waits for (the runnable count of /proc/loadavg, read at each large call). A
  worker that claims a chunk and then loses its core keeps the caller waiting for it (its writes
  must land before the call returns); when that costs the caller a quarter of its own time, the
  next calls run serially (4, 8, ... up to :data:`MAX_BACKOFF`) before sharing is tried again,
  so under sustained load a call costs what one thread costs;
* **fork**: the workers do not survive a fork; a child makes its own on first use.
"""

from __future__ import annotations

import itertools
import os
import threading
import time
from collections.abc import Callable

#: Smallest call (elements) that is shared with the workers. Measured on the 2-core development
#: machine, idle (float32 forward without a mask, out= given, 1 vs 2 threads, medians of 200
#: alternating calls): 2^16: 35 vs 76 us; 2^18: 101 vs 105 us; 2^19: 196 vs 200 us; 2^20: 376
#: vs 369 us; 2^22: 3.1 vs 1.5 ms. Waking a worker costs some 30 to 40 us, so sharing pays from
#: 2^20. Regenerate with ``python -m bench.studies.crossover``.
PARALLEL_MIN = 1 << 20
#: When the workers keep the caller waiting (their cores are busy), the next calls run serially:
#: 4, then 8, ... up to this many, before sharing is tried again.
MAX_BACKOFF = 256

_lock = threading.Lock()  # held by the one call that is sharing the workers
_pool: _Pool | None = None
_stats = {"shared_calls": 0, "serial_calls": 0, "backed_off_calls": 0}
_backoff = {"left": 0, "length": 0}


class _Job:
    """One call's chunks: ``run(c)`` does chunk ``c``; anyone may claim the next one."""

    def __init__(self, run: Callable[[int], None], n_chunks: int):
        self.run, self.n_chunks = run, n_chunks
        self._claim = itertools.count()  # next() is atomic under the GIL
        self._left = n_chunks
        self._count_lock = threading.Lock()
        self.finished = threading.Event()
        self.error: BaseException | None = None

    def work(self) -> int:
        done = 0
        while (c := next(self._claim)) < self.n_chunks:
            done += 1
            try:
                self.run(c)
            except BaseException as e:  # re-raised in the caller's thread
                self.error = e
            with self._count_lock:
                self._left -= 1
                if self._left == 0:
                    self.finished.set()
        return done


class _Pool:
    def __init__(self, workers: int):
        self._wake = threading.Semaphore(0)
        self._job: _Job | None = None
        self.threads = [threading.Thread(target=self._loop, name=f"dropout-worker-{i}", daemon=True)
                        for i in range(workers)]
        for t in self.threads:
            t.start()

    def _loop(self) -> None:
        while True:
            self._wake.acquire()
            job = self._job
            if job is not None:
                job.work()  # a job already drained returns at once

    def run(self, job: _Job, helpers: int) -> bool:
        """Run ``job`` with up to ``helpers`` workers; True when they kept the caller waiting
        (a worker claimed a chunk, then lost its core) for a quarter of the caller's own time."""
        self._job = job
        t0 = time.perf_counter()
        for _ in range(min(helpers, len(self.threads))):
            self._wake.release()
        job.work()
        t1 = time.perf_counter()
        job.finished.wait()
        waited = time.perf_counter() - t1
        self._job = None
        if job.error is not None:
            raise job.error
        return waited > 0.25 * (t1 - t0)


def _pool_with(workers: int) -> _Pool:
    global _pool
    if _pool is None or len(_pool.threads) < workers:
        _pool = _Pool(workers)  # an older, smaller pool's threads stay idle on their semaphore
    return _pool


def _after_fork_in_child() -> None:
    global _lock, _pool, _loadavg_fd
    _loadavg_fd = None  # the descriptor is shared with the parent: open our own
    _lock = threading.Lock()  # a lock another thread held at the fork would never be released
    _pool = None  # the parent's worker threads do not exist here


os.register_at_fork(after_in_child=_after_fork_in_child)


_loadavg_fd: int | None = None


def cores_free() -> int:
    """Cores no other runnable thread is waiting for now: the machine's (our affinity's) cores
    less the runnable threads, this one included (the 4th field of /proc/loadavg, read afresh:
    a few microseconds). Where that file does not exist, every core counts as free."""
    global _loadavg_fd
    try:
        if _loadavg_fd is None:
            _loadavg_fd = os.open("/proc/loadavg", os.O_RDONLY)
        running = int(os.pread(_loadavg_fd, 128, 0).split()[3].split(b"/")[0])
    except (OSError, ValueError, IndexError):
        return _cores()
    return _cores() - running


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def threads_for(n: int) -> int:
    """How many threads a call over ``n`` elements would use now (1: serially): Numba's thread
    count for the calling thread, but no more than this thread plus the cores nobody waits for."""
    if n < PARALLEL_MIN:
        return 1
    from numba import get_num_threads

    wanted = get_num_threads()
    return 1 if wanted <= 1 else max(1, min(wanted, 1 + cores_free()))


def run_chunks(run: Callable[[int, int], None], n: int, n_chunks: int) -> None:
    """``run(c, k)`` for every chunk ``c`` of ``k`` (``k`` is ``n_chunks``, or 1 when the call
    runs serially), shared with the workers when ``n`` elements are worth it."""
    threads = threads_for(n) if n_chunks > 1 else 1
    if threads > 1 and _backoff["left"] > 0:
        _backoff["left"] -= 1
        _stats["backed_off_calls"] += 1
        threads = 1
    if threads <= 1 or not _lock.acquire(blocking=False):
        _stats["serial_calls"] += 1
        run(0, 1)  # small, one thread, backing off, or another Python thread is sharing the workers
        return
    try:
        _stats["shared_calls"] += 1
        kept_waiting = _pool_with(threads - 1).run(_Job(lambda c: run(c, n_chunks), n_chunks), threads - 1)
        length = min(max(4, 2 * _backoff["length"]), MAX_BACKOFF) if kept_waiting else 0
        _backoff.update(left=length, length=length)
    finally:
        _lock.release()


def parallel_state() -> dict:
    """For tests and reports: what the gate knows."""
    return {"parallel_min": PARALLEL_MIN, "pool_started": _pool is not None,
            "workers": 0 if _pool is None else len(_pool.threads), "backoff": dict(_backoff), **_stats}
