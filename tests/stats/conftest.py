"""The statistical battery's fixtures for the project's own tests. The checker's pytest plugin
(reference/conformance/plugin.py) gives ``--stat-seed``, ``stat_seeds``, ``stat_record`` and
the session's false-alarm budget; this file tells it which of our items are hypotheses, and
``judge`` runs one."""

from __future__ import annotations

import pytest

from reference.conformance import plugin
from reference.conformance.loader import wrap
from reference.conformance.stats import budget


def pytest_dropout_hypothesis(item):
    """A battery test (a ``probe`` parameter, on a ``backend``/``kernel`` or the stream) is one
    hypothesis of the session's budget; a test expected to reject is not."""
    cs = getattr(item, "callspec", None)
    probe = None if cs is None else cs.params.get("probe")
    if probe is None or item.get_closest_marker("expect_reject"):
        return None
    if probe.stream_level:
        return budget.hypothesis_key(probe, None, probe.n)
    target = cs.params.get("backend", cs.params.get("kernel"))
    if target is None:
        return None
    impl = wrap(target)
    n = probe.size(impl, "full")
    return None if n is None else budget.hypothesis_key(probe, impl, n)


@pytest.fixture
def stream_level(request):
    """Stream-level hypotheses (no backend) run once, in the run that includes the reference."""
    chosen = request.config.getoption("--backend")
    if chosen and "reference" not in chosen:
        pytest.skip("stream-level test: runs in the battery that includes --backend reference")
    import reference.dropout
    return reference.dropout


@pytest.fixture
def judge(request, stat_seeds):
    """``judge(probe, impl)``: run one hypothesis at the impl's size, record it, assert p >= ALPHA."""

    def _judge(probe, target, name=None):
        impl = wrap(target)
        if probe.size(impl) is None:
            pytest.skip("too slow for the CUDA simulator: the reference and cpu runs cover it at full "
                        "size, and cuda reproduces the reference bit for bit (test_reference_agreement)")
        a = plugin.alpha(request.config)
        pv, n = probe(impl, stat_seeds)
        name = name or ("stream" if probe.stream_level else impl.name)
        plugin.record(request.config, test=probe.label, backend=name, n=n, p=probe.p, p_value=pv,
                      passed=pv >= a, expect="pass", simulated=impl.simulated, nodeid=request.node.nodeid)
        assert pv >= a, (f"{probe.label} on {name}: p-value {pv:.3g} < ALPHA {a:.3g} (n={n}); master seed "
                         f"{stat_seeds.master} ({stat_seeds.mode}): replay with --stat-seed={stat_seeds.master}")
        return pv

    return _judge
