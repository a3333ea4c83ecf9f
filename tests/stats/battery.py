"""The whole battery as a list of probes (one per hypothesis), for the mutant tests, the
power table and the budget check. The test modules own the statistics; this only gathers."""

from __future__ import annotations

from . import budget, test_cross_call, test_keep_rate, test_mean, test_neighbours, test_raw_words
from . import test_uniformity, test_variance

_BACKEND_MODULES = (test_keep_rate, test_mean, test_variance, test_uniformity, test_neighbours,
                    test_cross_call)


def backend_probes():
    """Every per-backend hypothesis at the CI (default-run) sizes, in battery order."""
    for mod in _BACKEND_MODULES:
        yield from mod.probes()


def slow_probes():
    yield from test_keep_rate.slow_probes()


def stream_probes():
    yield from test_raw_words.probes()


def by_label():
    return {pr.label: pr for pr in backend_probes()}


def _check_budget():
    n_backend, n_slow, n_stream = (len(list(f())) for f in (backend_probes, slow_probes, stream_probes))
    assert n_backend == budget.PER_BACKEND, (n_backend, budget.PER_BACKEND)
    assert n_slow == budget.PER_BACKEND_SLOW, (n_slow, budget.PER_BACKEND_SLOW)
    assert n_stream == budget.STREAM_LEVEL, (n_stream, budget.STREAM_LEVEL)
    labels = [pr.label for pr in backend_probes()] + [pr.label for pr in slow_probes()]
    assert len(set(labels)) == len(labels), "probe labels must be unique"


_check_budget()
