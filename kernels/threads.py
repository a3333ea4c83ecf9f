"""When a CPU kernel call may use Numba's thread pool: only when the cores are free.

Numba's pool (whatever threading layer it found) is fork-join: a call returns when every
thread has done its share, so on a machine whose cores are held by other work (a test run,
another process's thread pool, a Dask worker) a call waits a scheduler quantum (~8 ms) for the
thread that has no core, at any size. So a call runs the parallel compilation only when this
process's threads would have the cores to themselves, and the serial compilation of the same
kernel otherwise (the tiles, and so the bits, do not depend on it). Numba's configuration and
every other library's settings are left as they are.

* **busy cores**: the runnable threads of other processes (the runnable count of
  /proc/loadavg, less this process's own running threads, which the pool is made of or which
  are the caller) must leave a core free besides the caller's (:func:`cores_free`);
* **small calls**: below :data:`PARALLEL_MIN` elements a hand-off to the pool costs more than
  it saves;
* **concurrent Python threads**: Numba's ``workqueue`` layer is not thread-safe (two threads
  launching at once abort the process), and the other layers oversubscribe the cores: one call
  at a time uses the pool, another meanwhile runs serially;
* **fork**: a child forked from a process that started GNU OpenMP must never enter it again
  (libgomp kills it), and a pool's threads do not survive a fork: such a child runs serially.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time

#: Smallest call (elements) that goes to the thread pool. Measured on the 2-core development
#: machine (float32 forward without a mask, serial vs 2 threads, fastest of 300 calls):
#: 2^11: 2.8 vs 3.9 us; 2^12: 4.7 vs 4.0 us; 2^13: 8.7 vs 6.2 us; 2^14: 17.2 vs 10.5 us;
#: 2^16: 64.5 vs 33.7 us. Regenerate with ``python -m bench.studies.crossover`` (idle machine).
PARALLEL_MIN = 1 << 13

_lock = threading.Lock()  # held by the one call that is using the pool
_pool_used = False  # this process has entered Numba's pool through us
_pool_unusable = False  # forked from a process whose pool cannot be entered here
_loadavg_fd: int | None = None
_stats = {"parallel_calls": 0, "serial_calls": 0, "busy_calls": 0}


def _pool_started_here() -> bool:
    if _pool_used:
        return True
    try:  # the user's own parallel Numba code may have started the pool
        from numba.np.ufunc import parallel
    except ImportError:  # pragma: no cover
        return False
    return bool(getattr(parallel, "_is_initialized", False))


def _after_fork_in_child() -> None:
    global _lock, _pool_unusable, _loadavg_fd
    _lock = threading.Lock()  # a lock another thread held at the fork would never be released
    _loadavg_fd = None  # the descriptor is shared with the parent: open our own
    if _pool_started_here():
        # The parent's pool threads are gone and GNU OpenMP aborts a forked child that enters
        # it; TBB copes, but serial is safe under every layer and a pool of processes already
        # uses the cores.
        _pool_unusable = True


os.register_at_fork(after_in_child=_after_fork_in_child)


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _running() -> int | None:
    """The system's runnable threads now (the 4th field of /proc/loadavg), None without /proc."""
    global _loadavg_fd
    try:
        if _loadavg_fd is None:
            _loadavg_fd = os.open("/proc/loadavg", os.O_RDONLY)
        return int(os.pread(_loadavg_fd, 128, 0).split()[3].split(b"/")[0])
    except (OSError, ValueError, IndexError):
        return None


def _own_running() -> int:
    """This process's threads in state R (running or runnable), from /proc/self/task/*/stat."""
    count = 0
    try:
        tasks = os.listdir("/proc/self/task")
    except OSError:
        return 1
    for tid in tasks:
        try:
            with open(f"/proc/self/task/{tid}/stat", "rb") as f:
                stat = f.read()
        except OSError:  # the thread ended meanwhile
            continue
        state = stat.rfind(b")") + 2
        if stat[state:state + 1] == b"R":
            count += 1
    return max(count, 1)


#: Calls from this many elements look at which threads are running (this process's or
#: others'); smaller ones only at the system's runnable count (a few microseconds).
EXACT_MIN = 1 << 18
_EXACT_TTL = 0.005  # seconds a look at /proc/self/task stays good
_exact: dict[str, float] = {"at": -1.0, "own": 1}


def cores_free(n: int = 0) -> int:
    """Cores besides the caller's that no runnable thread of another process waits for. Quiet
    machine: one read of /proc/loadavg. Otherwise, for calls of :data:`EXACT_MIN` elements or
    more, this process's own running threads (the pool spinning after its last region) are
    not counted (read from /proc/self/task at most every 5 ms); smaller calls count every
    runnable thread. Where /proc is missing, every core is free."""
    running = _running()
    if running is None:
        return _cores() - 1
    if running > 1 and n >= EXACT_MIN:
        now = time.monotonic()
        if now - _exact["at"] > _EXACT_TTL:
            _exact.update(at=now, own=_own_running())
        running -= min(int(_exact["own"]), running) - 1
    return _cores() - running


def count_serial() -> None:
    """A caller that answered :func:`pool_for`'s first question itself (a call below
    :data:`PARALLEL_MIN`) counts its serial call here."""
    _stats["serial_calls"] += 1


@contextlib.contextmanager
def pool_for(n: int):
    """Yield whether a call over ``n`` elements may run the parallel compilation now."""
    global _pool_used
    if n < PARALLEL_MIN or _pool_unusable:
        _stats["serial_calls"] += 1
        yield False  # small or forked: serially
        return
    if cores_free(n) < 1:
        _stats["busy_calls"] += 1
        yield False  # the pool's threads would wait for a core: serially
        return
    if not _lock.acquire(blocking=False):
        _stats["serial_calls"] += 1
        yield False  # another Python thread holds the pool
        return
    try:
        _pool_used = True
        _stats["parallel_calls"] += 1
        yield True
    finally:
        _lock.release()


def parallel_state() -> dict:
    """For tests and reports: what the gate knows."""
    return {"parallel_min": PARALLEL_MIN, "pool_used": _pool_used, "pool_unusable": _pool_unusable, **_stats}
