"""The whole battery as a list of probes (one per hypothesis). The property modules own the
statistics; this only gathers them, for the pytest files, the checker, the mutant matrix
and the power table."""

from __future__ import annotations

from . import (
    byte_sharing,
    cross_call,
    half_mean,
    keep_rate,
    mean,
    multidim,
    neighbours,
    raw_words,
    structured,
    successive,
    uniformity,
    variance,
)

_IMPL_MODULES = (keep_rate, mean, variance, uniformity, neighbours, byte_sharing, cross_call, multidim, structured,
                 half_mean)


def backend_probes():
    """Every per-implementation hypothesis, in battery order."""
    for mod in _IMPL_MODULES:
        yield from mod.probes()


def stateful_probes():
    """Successive calls of a stateful implementation (its own generator): the others have none."""
    yield from successive.probes()


def slow_probes():
    yield from keep_rate.slow_probes()


def stream_probes():
    yield from raw_words.probes()


def all_probes():
    yield from backend_probes()
    yield from stateful_probes()
    yield from slow_probes()
    yield from stream_probes()


def by_label():
    return {pr.label: pr for pr in all_probes()}


def _check_unique():
    labels = [pr.label for pr in all_probes()]
    assert len(set(labels)) == len(labels), "probe labels must be unique"


_check_unique()
