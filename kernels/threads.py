"""When a CPU kernel call may use Numba's thread pool: only when the cores are free.

Numba's pool (whatever threading layer it found) is fork-join: a call returns when every
thread has done its share, so on a machine whose cores are held by other work (a test run,
another process's thread pool, a Dask worker) a call waits a scheduler quantum (~8 ms) for the
thread that has no core, at any size. So a call runs the parallel compilation only when this
process's threads would have the cores to themselves, and the serial compilation of the same
kernel otherwise (the tiles, and so the bits, do not depend on it). Numba's configuration and
every other library's settings are left as they are.

* **busy cores**: the runnable threads (the runnable count of /proc/loadavg) other than the
  caller and the pool's own workers (which spin a while after each parallel region) must leave
  a core free besides the caller's (:func:`cores_free`). Another thread of this process counts
  as busy like another process: a PyTorch or BLAS pool spinning beside us holds its core;
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
#: machine (float32 forward without a mask, ``out=``, serial compilation vs 2 threads, medians
#: of 300 calls each, alternately; ``python -m bench.studies.crossover``, idle machine):
#: 2^13: 6.4 vs 7.9 us; 2^14: 9.0 vs 9.2 us; 2^15: 13.2 vs 11.3 us; 2^16: 24.8 vs 17.8 us.
PARALLEL_MIN = 1 << 15

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
    global _lock, _fds_lock, _pool_unusable, _loadavg_fd
    _lock = threading.Lock()  # a lock another thread held at the fork would never be released
    _fds_lock = threading.Lock()
    _loadavg_fd = None  # the descriptor is shared with the parent: open our own
    _verdict["at"] = -1.0
    for fd in _pool_fds:  # the parent's threads: they do not exist here
        os.close(fd)
    _pool_fds.clear()
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


def _task_state(tid) -> bytes:
    """One thread's scheduler state letter (``R`` running or runnable), b"" if it is gone."""
    try:
        with open(f"/proc/self/task/{tid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return b""
    at = stat.rfind(b")") + 2
    return stat[at:at + 1]


def _task_ids() -> set[str]:
    try:
        return set(os.listdir("/proc/self/task"))
    except OSError:
        return set()


def _own_running() -> int:
    """This process's threads in state R (about 50 us for four threads): the fallback where
    the pool's own threads are not known."""
    return max(sum(_task_state(tid) == b"R" for tid in _task_ids()), 1)


#: The pool's worker threads (their ids under /proc/self/task), learned after this module's
#: first parallel call (kernels/pool_probe.py). None: not known (yet, or the probe failed).
_pool_tids: frozenset[str] | None = None
_probed = False


def _learn_pool() -> None:
    """Ask the pool which threads it has (once; the caller holds the pool)."""
    global _pool_tids, _probed
    _probed = True
    try:
        from .pool_probe import pool_thread_ids

        me = threading.get_native_id()
        _pool_tids = frozenset(str(t) for t in pool_thread_ids() if t != me)
    except Exception:  # no gettid (not Linux, or an old C library): count every thread of ours
        _pool_tids = None


_pool_fds: list[int] = []  # their stat files, held open: a pread costs ~1.5 us, an open ~10
_fds_lock = threading.Lock()


def _pool_running() -> int:
    """The pool's workers now running or runnable (spinning after the last parallel region:
    they give the cores back to the next one)."""
    if _pool_tids is None:
        return _own_running() - 1  # every thread of ours but the caller
    if not _pool_fds and _pool_tids:
        with _fds_lock:  # callers from several Python threads: open each file once
            if not _pool_fds:
                for tid in _pool_tids:
                    with contextlib.suppress(OSError):  # the thread is gone
                        _pool_fds.append(os.open(f"/proc/self/task/{tid}/stat", os.O_RDONLY))
    count = 0
    for fd in _pool_fds:
        try:
            stat = os.pread(fd, 512, 0)
        except OSError:
            continue
        at = stat.rfind(b")") + 2
        count += stat[at:at + 1] == b"R"
    return count


#: How long a verdict of :func:`cores_free` stands: the load changes on the scheduler's time
#: scale (milliseconds), and a layer-sized call takes microseconds, less than reading /proc.
#: A verdict gone stale while load arrives costs one stalled call at most: that call outlasts it.
VERDICT_TTL = 0.001
_verdict: dict[str, float] = {"at": -1.0, "free": 0}


def cores_free(n: int = 0) -> int:
    """Cores besides the caller's that no runnable thread of another process, or of another
    thread of this one, waits for: the runnable count of /proc/loadavg, less the caller and
    the pool's own workers (which spin for a while after each parallel region). Decided afresh
    at most every :data:`VERDICT_TTL` seconds; where /proc is missing, every core is free."""
    now = time.monotonic()
    if now - _verdict["at"] < VERDICT_TTL:
        return int(_verdict["free"])
    running = _running()
    if running is None:
        free = _cores() - 1
    else:
        if running > 1:
            running -= min(_pool_running(), running - 1)
        free = _cores() - running
    _verdict.update(at=now, free=free)
    return free


def try_pool(n: int) -> bool:
    """Whether a call over ``n`` elements may run the parallel compilation now. True holds the
    pool for this caller: call :func:`leave` once the parallel call has returned."""
    global _pool_used
    if n < PARALLEL_MIN or _pool_unusable:
        _stats["serial_calls"] += 1
        return False  # small or forked: serially
    if cores_free(n) < 1:
        _stats["busy_calls"] += 1
        return False  # the pool's threads would wait for a core: serially
    if not _lock.acquire(blocking=False):
        _stats["serial_calls"] += 1
        return False  # another Python thread holds the pool
    _pool_used = True
    _stats["parallel_calls"] += 1
    return True


def leave() -> None:
    """Give the pool back after a parallel call that :func:`try_pool` allowed."""
    try:
        if not _probed:
            _learn_pool()
    finally:
        _lock.release()


@contextlib.contextmanager
def pool_for(n: int):
    """:func:`try_pool` and :func:`leave` as a context manager: yields whether to run in parallel."""
    parallel = try_pool(n)
    try:
        yield parallel
    finally:
        if parallel:
            leave()


def parallel_state() -> dict:
    """For tests and reports: what the gate knows."""
    return {"parallel_min": PARALLEL_MIN, "pool_used": _pool_used, "pool_unusable": _pool_unusable, **_stats}
