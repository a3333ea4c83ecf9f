"""kernels/threads.py: a call uses Numba's pool only when the cores are free, and which
compilation runs never changes a bit."""

from __future__ import annotations

import os
import threading
import time

import numba
import numpy as np
import pytest

from kernels import cpu, threads

N = 16 * threads.PARALLEL_MIN + 123  # large enough for the pool, not a whole number of tiles


@pytest.fixture
def two_threads():
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("Numba sees one core")
    before = numba.get_num_threads()
    numba.set_num_threads(2)
    yield
    numba.set_num_threads(before)


def _forward(x):
    return cpu.dropout_forward(x, 0.3, seed=2**40 + 9, offset=5, mask_format="bits")


def test_busy_and_free_cores_give_the_same_bits(two_threads, monkeypatch):
    x = np.random.default_rng(0).standard_normal(N).astype(np.float32)
    monkeypatch.setattr(threads, "cores_free", lambda n=0: 0)  # every other core busy: serial
    before = dict(threads.parallel_state())
    y1, m1 = _forward(x)
    after = threads.parallel_state()
    assert after["busy_calls"] == before["busy_calls"] + 1 and after["parallel_calls"] == before["parallel_calls"]
    monkeypatch.setattr(threads, "cores_free", lambda n=0: 1)  # a free core: the pool
    y2, m2 = _forward(x)
    assert threads.parallel_state()["parallel_calls"] == before["parallel_calls"] + 1
    assert y1.tobytes() == y2.tobytes() and m1.tobytes() == m2.tobytes()


def test_small_calls_run_serially(monkeypatch):
    monkeypatch.setattr(threads, "cores_free", lambda n=0: 1)
    with threads.pool_for(threads.PARALLEL_MIN - 1) as parallel:
        assert not parallel
    with threads.pool_for(threads.PARALLEL_MIN) as parallel:
        assert parallel


def test_cores_free_counts_other_threads_only(monkeypatch):
    """The runnable threads of /proc/loadavg that are neither the caller nor the pool's own
    workers take cores; a verdict stands VERDICT_TTL seconds."""
    monkeypatch.setattr(threads, "_cores", lambda: 2)
    monkeypatch.setattr(threads, "VERDICT_TTL", -1.0)  # look afresh every time
    monkeypatch.setattr(threads, "_running", lambda: 1)  # the caller alone
    assert threads.cores_free() == 1
    monkeypatch.setattr(threads, "_running", lambda: 3)
    monkeypatch.setattr(threads, "_pool_running", lambda: 0)  # two other threads: busy
    assert threads.cores_free() == -1
    monkeypatch.setattr(threads, "_pool_running", lambda: 1)  # our worker spinning, one other thread
    assert threads.cores_free() == 0
    monkeypatch.setattr(threads, "_running", lambda: 2)  # our worker spinning, nobody else
    assert threads.cores_free() == 1
    monkeypatch.setattr(threads, "_running", lambda: None)  # no /proc
    assert threads.cores_free() == 1
    monkeypatch.setattr(threads, "VERDICT_TTL", 3600.0)
    monkeypatch.setattr(threads, "_running", lambda: 5)
    assert threads.cores_free() == 1  # the last verdict stands


def test_the_pool_workers_are_learned_and_told_apart(two_threads, monkeypatch):
    """The pool's workers are known after the first parallel call (the caller is not one of
    them), and a worker spinning after a parallel region does not make the next call serial
    (it did: every call from 2^13 to 2^17 after the first ran serially on an idle machine)."""
    x = np.random.default_rng(0).standard_normal(N).astype(np.float32)
    monkeypatch.setattr(threads, "VERDICT_TTL", -1.0)
    real_pool_running = threads._pool_running
    seen = {"pool": 0}

    def running():  # nobody runs but the caller and the pool's workers, read once per verdict
        seen["pool"] = real_pool_running()
        return 1 + seen["pool"]

    monkeypatch.setattr(threads, "_running", running)
    monkeypatch.setattr(threads, "_pool_running", lambda: seen["pool"])
    before = dict(threads.parallel_state())
    for _ in range(5):
        _forward(x)
    after = threads.parallel_state()
    tids = threads._pool_tids
    if tids is None:
        pytest.skip("the pool probe (gettid) is not available here: its workers are not known")
    assert str(threading.get_native_id()) not in tids
    assert 1 <= len(tids) <= numba.config.NUMBA_NUM_THREADS - 1
    assert 0 <= real_pool_running() <= len(tids)
    assert after["parallel_calls"] - before["parallel_calls"] == 5, (before, after)


def test_own_running_sees_this_thread():
    assert threads._own_running() >= 1
    running = threads._running()
    assert running is None or running >= 1


def test_pool_stat_files_are_opened_once_from_many_threads(two_threads, monkeypatch):
    x = np.ones(N, np.float32)
    monkeypatch.setattr(threads, "cores_free", lambda n=0: 1)
    _forward(x)  # a parallel call: the pool is known from here on
    if not threads._pool_tids:
        pytest.skip("the pool probe (gettid) is not available here")
    for fd in threads._pool_fds:
        os.close(fd)
    threads._pool_fds.clear()
    real_open = os.open

    def slow_open(*args, **kwargs):  # lets the other threads in between (as a busy machine would)
        time.sleep(0.01)
        return real_open(*args, **kwargs)

    monkeypatch.setattr(threads.os, "open", slow_open)
    workers = [threading.Thread(target=threads._pool_running) for _ in range(8)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert len(threads._pool_fds) == len(threads._pool_tids)
