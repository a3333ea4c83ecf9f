"""The statistical battery is library code (reference/stats); its fixtures (--stat-seed,
stat_seeds, judge, the session's false-alarm budget) come from the dropout-check pytest
plugin (bench/pytest_plugin.py). Only this one is local."""

from __future__ import annotations

import pytest


@pytest.fixture
def stream_level(request):
    """Stream-level hypotheses (no backend) run once, in the run that includes the reference."""
    chosen = request.config.getoption("--backend")
    if chosen and "reference" not in chosen:
        pytest.skip("stream-level test: runs in the battery that includes --backend reference")
    import reference.dropout
    return reference.dropout
