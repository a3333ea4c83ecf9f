"""Every hypothesis of the statistical battery (reference/conformance/stats, docs/STATISTICS.md) on every
backend, judged at the session's ALPHA (reference/conformance/plugin.py)."""

from __future__ import annotations

import numpy as np
import pytest

from reference.conformance.stats import battery
from reference.conformance.stats.sampling import x_signed


@pytest.mark.parametrize("probe", list(battery.backend_probes()), ids=lambda pr: pr.label)
def test_probe(backend, probe, judge):
    judge(probe, backend)


@pytest.mark.slow
@pytest.mark.parametrize("probe", list(battery.slow_probes()), ids=lambda pr: pr.label)
def test_probe_slow(backend, probe, judge):
    judge(probe, backend)


@pytest.mark.parametrize("probe", list(battery.stream_probes()), ids=lambda pr: pr.label)
def test_stream(stream_level, probe, judge):
    judge(probe, stream_level)


def test_same_seed_and_offset_repeat_exactly(backend, stat_seeds):
    """Not statistical (not in the budget): two calls with the same (seed, offset) return
    bit-identical outputs and masks."""
    n = 1024 if getattr(backend, "NAME", "") == "cuda" else 65536
    seed, offset = stat_seeds("repeat")
    x = x_signed(n)
    y1, m1 = backend.dropout_forward(x, 0.3, seed=seed, offset=offset + 1)
    y2, m2 = backend.dropout_forward(x, 0.3, seed=seed, offset=offset + 1)
    np.testing.assert_array_equal(np.asarray(y1).view(np.uint32), np.asarray(y2).view(np.uint32))
    np.testing.assert_array_equal(np.asarray(m1), np.asarray(m2))
