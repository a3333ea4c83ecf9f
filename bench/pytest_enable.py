"""pytest plugin: time the benchmarks whenever an option asks for timings.

pyproject's ``addopts`` holds ``--benchmark-disable`` so that the default test run only
smoke-tests each benchmark body once. pytest-benchmark then ignores ``--benchmark-autosave``,
``--benchmark-json`` or ``--benchmark-compare`` (it saves and compares nothing) and refuses
``--benchmark-only``. This plugin, loaded with ``-p bench.pytest_enable`` from ``addopts``,
lifts ``--benchmark-disable`` when any of those is given, as ``--benchmark-enable`` would.
"""

from __future__ import annotations

import pytest

# pytest-benchmark's options (dest names) that only make sense with timings
TIMING_OPTIONS = (
    "benchmark_only", "benchmark_save", "benchmark_autosave", "benchmark_save_data", "benchmark_json",
    "benchmark_compare", "benchmark_compare_fail", "benchmark_histogram", "benchmark_cprofile",
)


def timing_requested(config) -> bool:
    return any(config.getoption(name, default=None) for name in TIMING_OPTIONS)


@pytest.hookimpl(tryfirst=True)  # before pytest-benchmark's (trylast) reads the options
def pytest_configure(config):
    if timing_requested(config):
        config.option.benchmark_disable = False
