"""Deterministic checks of a stateful implementation (``f(x, p)`` drawing from a generator it
holds; protocol.from_stateful): what users of a global generator rely on.

* successive calls give different masks (a seed and offset hard-coded in a kernel give the
  same mask on every call);
* reseeding reproduces the whole sequence of calls, not only the first;
* ``p = 0`` and evaluation mode leave the generator where it was: a model with dropout
  switched off draws the same masks afterwards as one without the call (a failure, or a note
  where the framework documents otherwise: ``notes=``);
* the same seed gives the same masks at 1 and N threads (with a ``set_threads`` hook).

Each check is ``fn(impl, strict) -> (passed, detail)``, as in :mod:`.semantic`. The
statistical side (independence of successive calls, lags and shifts included) is in
stats/successive.py.
"""

from __future__ import annotations

import numpy as np

from .arrays import bits_equal, nonzero_normal

SEED = 0x0DDB_A11_5EED  # any seed: the checks compare the implementation with itself
P = 0.5
CALLS = 4
SHAPE = (4099,)
THREAD_SHAPE = (256, 1024)  # 2**18: above the grain at which the frameworks split work


def _x(impl, shape=SHAPE):
    return nonzero_normal(impl.capabilities.base_dtypes[0], shape)


def _calls(impl, x, k, *, seed=None, before=None):
    """``k`` successive calls at p = P (after ``reseed(seed)`` and ``before()`` where given)."""
    h = impl.hooks
    if seed is not None:
        impl.reseed(seed)
    if before is not None:
        before()
    return [np.asarray(h.call(x, P)) for _ in range(k)]


def _diff(a, b) -> str:
    d = int(np.count_nonzero((a != 0) != (b != 0)))
    return f"{d} of {a.size} keep decisions ({100 * d / a.size:.1f} %)"


def successive_differ(impl, strict):
    """Successive calls give different masks (no hard-coded seed or offset)."""
    x = _x(impl)
    ys = _calls(impl, x, CALLS, seed=SEED if impl.hooks.reseed else None)
    same = [(i, j) for i in range(CALLS) for j in range(i + 1, CALLS)
            if np.array_equal(ys[i] != 0, ys[j] != 0)]
    if same:
        pairs = ", ".join(f"{i + 1} and {j + 1}" for i, j in same)
        return False, (f"calls {pairs} of {CALLS} successive calls (p = {P}, n = {x.size}) kept the same elements: "
                       f"expected different masks (two independent masks agree on all {x.size} with probability "
                       f"2^-{x.size}); likely cause: a seed or offset fixed in the kernel, or a generator not advanced")
    return True, f"{CALLS} successive calls, {CALLS * (CALLS - 1) // 2} pairs, all different masks"


def reseed_reproduces(impl, strict):
    """``reseed(seed)`` reproduces every call of the sequence after it, and another seed does not."""
    x = _x(impl)
    a = _calls(impl, x, CALLS, seed=SEED)
    b = _calls(impl, x, CALLS, seed=SEED)
    bad = [i + 1 for i in range(CALLS) if not bits_equal(a[i], b[i])]
    if bad:
        return False, (f"after reseed({SEED}) twice, call(s) {bad} of {CALLS} differ "
                       f"(call {bad[0]}: {_diff(a[bad[0] - 1], b[bad[0] - 1])}); expected bit-identical sequences; "
                       "likely cause: state outside the generator the seed resets (a seed that moves with each "
                       "trace, a second generator, a cached key)")
    c = _calls(impl, x, 1, seed=SEED + 1)
    if np.array_equal(c[0] != 0, a[0] != 0):
        return False, f"reseed({SEED}) and reseed({SEED + 1}) give the same first mask: the seed is ignored"
    return True, f"reseed reproduces {CALLS} successive calls bit for bit; seed + 1 gives another mask"


def _keeps_generator(impl, strict, before, what):
    x = _x(impl)
    want = _calls(impl, x, 2, seed=SEED)
    got = _calls(impl, x, 2, seed=SEED, before=lambda: before(x))
    if all(bits_equal(w, g) for w, g in zip(want, got)):
        return True, f"{what} leaves the generator where it was: the next two calls are unchanged"
    return False, (f"after reseed, a call with {what} moved the generator: the next call's mask differs in "
                   f"{_diff(want[0], got[0])}; expected the generator untouched (a model with dropout switched off "
                   "must draw the same masks afterwards as one without the call)")


def p0_keeps_generator(impl, strict):
    """A call at ``p = 0`` draws nothing from the generator."""
    return _keeps_generator(impl, strict, lambda x: impl.hooks.call(x, 0.0), "p = 0")


def eval_keeps_generator(impl, strict):
    """A call in evaluation mode draws nothing from the generator."""
    impl.require("training")
    return _keeps_generator(impl, strict, lambda x: impl.hooks.call(x, P, training=False), "training=False")


def threads_agree(impl, strict):
    """The same seed gives the same masks at 1 thread and at N threads."""
    h = impl.hooks
    x = _x(impl, THREAD_SHAPE)
    n = h.set_threads(1)
    try:
        one = _calls(impl, x, 2, seed=SEED)
        many_n = max(2, n or 2)
        h.set_threads(many_n)
        many = _calls(impl, x, 2, seed=SEED)
    finally:
        if n:
            h.set_threads(n)
    if all(bits_equal(a, b) for a, b in zip(one, many)):
        return True, f"1 and {many_n} threads: the same masks ({x.size} elements, 2 calls)"
    return False, (f"1 and {many_n} threads give different masks for one seed: {_diff(one[0], many[0])}; "
                   "expected the same (results must not depend on the thread count)")


CHECKS = {  # name -> (needs, fn)
    "successive_differ": (("stateful",), successive_differ),
    "reseed_reproduces": (("stateful", "reproducible"), reseed_reproduces),
    "p0_keeps_generator": (("stateful", "reproducible"), p0_keeps_generator),
    "eval_keeps_generator": (("stateful", "reproducible", "training"), eval_keeps_generator),
    "threads_agree": (("stateful", "reproducible", "threads"), threads_agree),
}
