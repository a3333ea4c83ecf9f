"""Which threads are Numba's pool: a parallel loop in which every thread writes its own kernel
thread id (``gettid``), so that kernels/threads.py can tell the pool's workers, spinning after a
parallel region, from other threads that hold cores (another pool in this process included)."""

from __future__ import annotations

from typing import Any

import numpy as np
from llvmlite import ir
from numba import config, get_num_threads, njit, prange, set_num_threads, types
from numba.core import cgutils
from numba.core.extending import intrinsic as _intrinsic

intrinsic: Any = _intrinsic  # Numba's stubs type an intrinsic's call as its typing function's


@intrinsic
def _gettid(typingctx):
    def codegen(context, builder, sig, args):
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.IntType(32), []), "gettid")
        return builder.sext(builder.call(fn, []), ir.IntType(64))
    return types.int64(), codegen


@njit(parallel=True, cache=True)
def _each_thread_id(out):
    for i in prange(out.shape[0]):
        out[i] = _gettid()


def pool_thread_ids() -> set[int]:
    """The kernel thread ids of every thread of Numba's pool that ran a share of a parallel loop
    (the caller's among them), all of the pool's threads enabled for the loop."""
    before = get_num_threads()
    every: int = getattr(config, "NUMBA_NUM_THREADS")  # noqa: B009 (set at run time: the stubs lack it)
    set_num_threads(every)
    try:
        out = np.zeros(256 * every, dtype=np.int64)
        _each_thread_id(out)
    finally:
        set_num_threads(before)
    return set(out.tolist())
