"""kernels/threads.py: when a call shares its work, and that sharing never changes a bit."""

from __future__ import annotations

import threading
import time

import numba
import numpy as np
import pytest

from kernels import cpu, threads

N = 4 * threads.PARALLEL_MIN + 123  # large enough to share, not a multiple of a tile


@pytest.fixture
def two_threads(monkeypatch):
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("Numba sees one core")
    before = numba.get_num_threads()
    numba.set_num_threads(2)
    monkeypatch.setattr(threads, "_backoff", {"left": 0, "length": 0})
    yield
    numba.set_num_threads(before)


def _forward(x):
    return cpu.dropout_forward(x, 0.3, seed=2**40 + 9, offset=5, mask_format="bits")


def test_shared_and_serial_calls_give_the_same_bits(two_threads, monkeypatch):
    x = np.random.default_rng(0).standard_normal(N).astype(np.float32)
    monkeypatch.setattr(threads, "cores_free", lambda: 0)  # every other core busy: serial
    before = threads.parallel_state()["shared_calls"]
    y1, m1 = _forward(x)
    assert threads.parallel_state()["shared_calls"] == before, "shared the work with no free core"
    monkeypatch.setattr(threads, "cores_free", lambda: 1)  # an idle core: shared
    y2, m2 = _forward(x)
    assert threads.parallel_state()["shared_calls"] == before + 1, "did not share the work on an idle core"
    assert y1.tobytes() == y2.tobytes() and m1.tobytes() == m2.tobytes()


def test_one_thread_and_small_calls_run_serially(two_threads, monkeypatch):
    monkeypatch.setattr(threads, "cores_free", lambda: 1)
    assert threads.threads_for(threads.PARALLEL_MIN - 1) == 1
    assert threads.threads_for(N) == 2
    numba.set_num_threads(1)
    assert threads.threads_for(N) == 1


def test_a_worker_that_keeps_the_caller_waiting_backs_off(two_threads, monkeypatch):
    """A worker that claims a chunk and then stalls (its core taken) makes the next calls serial."""
    monkeypatch.setattr(threads, "cores_free", lambda: 1)
    done = []

    def run(c, k):
        worker = threading.current_thread().name.startswith("dropout-worker")
        time.sleep(0.05 if worker else 0.002)  # the worker lost its core; the caller works on
        done.append((c, k))

    threads.run_chunks(run, N, 8)
    if not any(t.name.startswith("dropout-worker") for t in threading.enumerate()):
        pytest.skip("no worker thread started")
    assert sorted(done) == [(c, 8) for c in range(8)], "a chunk ran twice or never"
    if threads.parallel_state()["backoff"]["left"] == 0:
        pytest.skip("the worker never claimed a chunk (the caller did them all first)")
    left = threads.parallel_state()["backoff"]["left"]
    done.clear()
    threads.run_chunks(run, N, 8)
    assert done == [(0, 1)], "a backed-off call was shared"
    assert threads.parallel_state()["backoff"]["left"] == left - 1


def test_an_error_in_a_chunk_reaches_the_caller(two_threads, monkeypatch):
    monkeypatch.setattr(threads, "cores_free", lambda: 1)

    def run(c, k):
        if c == 3:
            raise RuntimeError("chunk 3")

    with pytest.raises(RuntimeError, match="chunk 3"):
        threads.run_chunks(run, N, 8)
