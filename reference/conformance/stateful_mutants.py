"""Stateful mutants: generators held by the implementation, each with one bug users have met;
the stateful checks (reference/conformance/stateful.py, stats/successive.py) must catch each.

The scaffold is the reference stream with the generator's state an offset that each call
advances by the number of elements drawn: ``f(x, p)``, ``f.reseed(seed)``, ``f.set_threads(n)``
(threads change nothing: the stream is indexed by position). Each mutant is an IMPL string,
e.g. ``dropout-check reference.conformance.stateful_mutants:fixed_seed``.
"""

from __future__ import annotations

import numpy as np

from reference import dropout as ref

from .protocol import from_stateful


class Scaffold:
    """A correct stateful dropout on our stream; subclasses override one step."""

    bug = "none: the reference stream, an offset advanced by each call"

    def __init__(self):
        self.seed, self.offset, self.threads, self.calls = 1, 0, 1, 0

    def reseed(self, seed):
        self.seed, self.offset = seed, 0

    def set_threads(self, n):
        old, self.threads = self.threads, n
        return old

    def advance(self, n, p, training):
        """The offset of this call's first element; moves the state past it."""
        start = self.offset
        self.offset += n
        return start

    def key(self):
        return self.seed

    def __call__(self, x, p, training=True, noise_shape=None):
        x = np.asarray(x)
        if not training or p == 0:
            return x.copy()
        self.calls += 1
        n = x.size if noise_shape is None else int(np.prod(noise_shape))  # one draw per mask element
        start = self.advance(n, p, training)
        return ref.dropout_forward(x, p, seed=self.key(), offset=start, noise_shape=noise_shape)[0]


class FixedSeed(Scaffold):
    bug = "seed and offset fixed in the kernel: the same mask on every call"

    def advance(self, n, p, training):
        return 0


class PairsShare(Scaffold):
    bug = "the generator advanced every other call: calls share masks in pairs"

    def advance(self, n, p, training):
        start = self.offset
        if self.calls % 2 == 0:
            self.offset += n
        return start


class Cycle2(Scaffold):
    bug = "the state cycles every 2 calls (two buffers of state used in turn)"

    def advance(self, n, p, training):
        return n * (self.calls % 2)


class Overlapping(Scaffold):
    bug = "the generator advanced by one Philox block (4 positions) per call, not by n: successive streams overlap"

    def advance(self, n, p, training):
        start = self.offset
        self.offset += 4
        return start


class AdvancesAtP0(Scaffold):
    bug = "a call at p = 0 still draws (as torch.native_dropout(x, 0.0, True) does)"

    def __call__(self, x, p, training=True, noise_shape=None):
        if training and p == 0:
            self.offset += np.asarray(x).size
        return super().__call__(x, p, training, noise_shape)


class EvalAdvances(Scaffold):
    bug = "an evaluation-mode call still draws"

    def __call__(self, x, p, training=True, noise_shape=None):
        if not training:
            self.offset += np.asarray(x).size
        return super().__call__(x, p, training, noise_shape)


class ReseedKeepsOffset(Scaffold):
    bug = "reseed sets the key but not the position (state the seed does not reset)"

    def reseed(self, seed):
        self.seed = seed


class ThreadDependent(Scaffold):
    bug = "the mask depends on the thread count (each thread's generator seeded by its index)"

    def key(self):
        return self.seed + (self.threads > 1)


def _make(cls):
    f = cls()
    return from_stateful(f, cls.__name__, reseed=f.reseed, set_threads=f.set_threads,
                         description=f"stateful mutant: {cls.bug}")


SCAFFOLD = _make(Scaffold)
SCAFFOLD.name = "stateful_scaffold"
MUTANTS = {
    "fixed_seed": _make(FixedSeed),
    "pairs_share": _make(PairsShare),
    "cycle2": _make(Cycle2),
    "overlapping_streams": _make(Overlapping),
    "advances_at_p0": _make(AdvancesAtP0),
    "eval_advances": _make(EvalAdvances),
    "reseed_keeps_offset": _make(ReseedKeepsOffset),
    "thread_dependent": _make(ThreadDependent),
}
for _name, _impl in MUTANTS.items():
    _impl.name = _name
globals().update(MUTANTS)

#: The checks designated to catch each (tests/stats/test_stateful.py asserts it).
CATCHERS = {
    "fixed_seed": ("stateful/successive_differ", "successive/calls1-2"),
    "pairs_share": ("stateful/successive_differ", "successive/calls1-2", "successive/calls2-3"),
    "cycle2": ("successive/lag2",),
    "overlapping_streams": ("successive/shifted/max=65536",),
    "advances_at_p0": ("stateful/p0_keeps_generator",),
    "eval_advances": ("stateful/eval_keeps_generator",),
    "reseed_keeps_offset": ("stateful/reseed_reproduces",),
    "thread_dependent": ("stateful/threads_agree",),
}
