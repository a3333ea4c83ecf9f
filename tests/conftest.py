"""Shared fixtures: the backends of the one registry (reference/registry.py) as parameters.

``--stat-seed`` and ``stat_seeds`` come from the checker's pytest plugin
(reference/conformance/plugin.py); the battery's ``judge`` from tests/stats/conftest.py."""

from __future__ import annotations

import pytest

import kernels
from reference import registry, vocab

ALL_BACKENDS = registry.NUMPY_BACKENDS


def pytest_addoption(parser):
    parser.addoption(
        "--backend", action="append", default=None, choices=ALL_BACKENDS,
        help="run only these backends (repeatable); default: every backend in kernels.BACKENDS",
    )


def _selected(config):
    chosen = config.getoption("--backend") or list(ALL_BACKENDS)
    return [name for name in ALL_BACKENDS if name in chosen]


def _param(name):
    if name in kernels.BACKENDS:
        return pytest.param(kernels.BACKENDS[name], id=name)
    return pytest.param(None, id=name, marks=pytest.mark.skip(reason=f"backend {name!r} unavailable (no GPU; "
                                                             "the CUDA simulator run covers it)"))


def pytest_generate_tests(metafunc):
    names = _selected(metafunc.config)
    if "backend" in metafunc.fixturenames:  # every backend, the reference included
        metafunc.parametrize("backend", [_param(n) for n in names])
    if "kernel" in metafunc.fixturenames:  # every backend held to the reference
        metafunc.parametrize("kernel", [_param(n) for n in names if n != "reference"])


def pytest_collection_modifyitems(config, items):
    from numba import cuda

    real_gpu = cuda.is_available() and not vocab.cuda_simulated()
    skip = pytest.mark.skip(reason="needs a real CUDA GPU")
    for item in items:
        if "gpu" in item.keywords and not real_gpu:
            item.add_marker(skip)
