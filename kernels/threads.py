"""When a CPU kernel call may use Numba's thread pool, whatever threading layer Numba found.

One gate for three hazards:

* **fork**: a child forked from a process that started GNU OpenMP must never enter it again
  (libgomp kills it: "fork() called from a process already using GNU OpenMP"), and a pool's
  worker threads do not survive a fork;
* **concurrent Python threads**: Numba's ``workqueue`` layer is not thread-safe (two threads
  launching at once abort the process), and the other layers oversubscribe the cores;
* **small calls**: below :data:`PARALLEL_MIN` elements a hand-off to the pool costs more
  than it saves, and on busy cores it waits for a scheduler slice (about 8 ms).

A call that may not use the pool runs the serial compilation of the same kernel: the tiles,
and so the bits, do not depend on it. Numba's configuration is never changed.
"""

from __future__ import annotations

import contextlib
import os
import threading

#: Smallest call (elements) that goes to the thread pool. Measured on the 2-core development
#: machine (float32 forward without a mask, serial vs 2 threads, fastest of 300 calls):
#: 2^11: 2.8 vs 3.9 us; 2^12: 4.7 vs 4.0 us; 2^13: 8.7 vs 6.2 us; 2^14: 17.2 vs 10.5 us;
#: 2^16: 64.5 vs 33.7 us. The pool starts to pay at 2^12 and clearly from 2^13; below 2^13 a
#: call never waits for a thread (on busy cores such a wait is a scheduler slice, ~8 ms).
#: Regenerate with ``python -m bench.studies.crossover``.
PARALLEL_MIN = 1 << 13

_lock = threading.Lock()  # held by the one call that is using the pool
_pool_used = False  # this process has entered Numba's pool through us
_pool_unusable = False  # forked from a process whose pool cannot be entered here


def _pool_started_here() -> bool:
    if _pool_used:
        return True
    try:  # the user's own parallel Numba code may have started the pool
        from numba.np.ufunc import parallel
    except ImportError:  # pragma: no cover
        return False
    return bool(getattr(parallel, "_is_initialized", False))


def _after_fork_in_child() -> None:
    global _lock, _pool_unusable
    _lock = threading.Lock()  # a lock another thread held at the fork would never be released
    if _pool_started_here():
        # The parent's pool threads are gone and GNU OpenMP aborts a forked child that enters
        # it; TBB copes, but serial is safe under every layer and a pool of processes already
        # uses the cores.
        _pool_unusable = True


os.register_at_fork(after_in_child=_after_fork_in_child)


@contextlib.contextmanager
def pool_for(n: int):
    """Yield whether a call over ``n`` elements may run the parallel compilation now."""
    global _pool_used
    if n < PARALLEL_MIN or _pool_unusable or not _lock.acquire(blocking=False):
        yield False  # small, forked, or another Python thread holds the pool: run serially
        return
    try:
        _pool_used = True
        yield True
    finally:
        _lock.release()


def parallel_state() -> dict:
    """For tests and reports: what the gate knows."""
    return {"parallel_min": PARALLEL_MIN, "pool_used": _pool_used, "pool_unusable": _pool_unusable}
