"""pytest-benchmark benchmarks over the same grid as ``dropout-bench`` (bench/grid.py).

In the default test run (``--benchmark-disable`` in pyproject's addopts) each benchmark body
runs once: a smoke test that every provider can prepare and run every point it supports.
Any option that saves, compares or prints timings times them (``bench/pytest_enable.py``)::

    pytest tests/test_bench_smoke.py --benchmark-autosave            # time, save .benchmarks/
    pytest tests/test_bench_smoke.py --benchmark-compare             # time, compare with the last save
    pytest tests/test_bench_smoke.py --benchmark-json=bench.json -m slow   # the big sizes too
    DROPOUT_BENCH_SIZES=2**20,2**22 pytest tests/test_bench_smoke.py --benchmark-enable
    dropout-bench --from-json bench.json --out reports/mine          # CSV, plots, summary

Benchmarks are grouped by operation, mask format, dtype, size and p, so each group compares
the providers doing the same work, and each group holds a copy of the same size on each
device (the ceiling), benchmarked first. Every benchmark is compiled and warmed up before
pytest-benchmark calibrates it (else the JIT compile lands in the calibration, which then
picks 5 rounds of single calls), and puts its GB/s and % of the copy in ``extra_info``.
GPU points synchronize inside the benchmarked function (so pytest-benchmark's host clock
sees the whole kernel) and also record a CUDA-event median in ``extra_info``
(``event_seconds_median``), which the GB/s figures and ``--from-json`` prefer.
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import pytest

from bench import env, grid, inputs, providers, report, timing, traffic
from reference import vocab

BACKEND_ORDER = ("reference", "cpu", "cuda")
DTYPES = vocab.DTYPES  # float32, float64, float16, bfloat16
P = 0.5
RTOL = {"float32": 1e-6, "float64": 1e-12, "float16": 1e-3, "bfloat16": 8e-3}  # one rounding of x * scale

SIZES = {"cpu": (2**10, 2**16), "cuda": (2**10, 2**20), "cuda-sim": (2**8,)}
SLOW_SIZES = {"cpu": (2**20, 2**24), "cuda": (2**24, 2**26), "cuda-sim": ()}


def _sizes(device):
    """(sizes, slow sizes) for a device; ``DROPOUT_BENCH_SIZES`` replaces both."""
    text = os.environ.get("DROPOUT_BENCH_SIZES")
    if text:
        return grid.parse_sizes(text), ()
    key = "cuda-sim" if device == "cuda" and vocab.cuda_simulated() else device
    return SIZES[key], SLOW_SIZES[key]


def _provider_names(config):
    chosen = config.getoption("--backend", default=None) or list(BACKEND_ORDER)
    names = [n for n in BACKEND_ORDER if n in chosen]
    devices = list(dict.fromkeys("cuda" if n == "cuda" else "cpu" for n in names))
    return names + [f"{kind}-{d}" for d in devices for kind in ("copy", "torch")]


def _params(config):
    """(point, comparison group) parameters, group by group: each group's copy (one per device)
    first, so that its GB/s is known when the group's dropouts report their % of it."""
    skipped, copies, groups = [], {}, {}
    for name in _provider_names(config):
        try:
            prov = providers.get(name)
        except ValueError as exc:
            skipped.append(pytest.param(None, id=f"{name}-unavailable", marks=pytest.mark.skip(reason=str(exc))))
            continue
        sizes, slow = _sizes(prov.device)
        for size_set, marks in ((sizes, ()), (slow, (pytest.mark.slow,))):
            g = grid.Grid("pytest", (name,), tuple(size_set), ps=(P,), dtypes=DTYPES,
                          max_size=dict(grid.SLOW_CAP))
            for pt in grid.points([g], {name: prov}):
                if pt.operation == "copy":
                    copies[(prov.device, pt.dtype, pt.n)] = (pt, marks)
                else:
                    groups.setdefault(pt.group, {}).setdefault(prov.device, []).append((pt, marks))
    params = []
    for group, by_device in groups.items():
        for device, members in by_device.items():
            pt = members[0][0]
            if (device, pt.dtype, pt.n) in copies:
                copy, marks = copies[(device, pt.dtype, pt.n)]
                copy_id = dataclasses.replace(pt, provider=copy.provider).id  # e.g. copy-cpu-forward-bool-...
                params.append(pytest.param((copy, group), marks=marks, id=copy_id))
            params += [pytest.param((m, group), marks=marks, id=m.id) for m, marks in members]
    return params + skipped


def pytest_generate_tests(metafunc):
    if "bench_point" in metafunc.fixturenames:
        metafunc.parametrize("bench_point", _params(metafunc.config))


def _info(point, prov):
    return {
        "backend": point.provider, "kind": prov.kind, "operation": point.operation,
        "mask_format": point.mask_label, "dtype": point.dtype, "n": point.n,
        "p": point.p if point.operation != "copy" else None,
        "bytes": traffic.bytes_moved(point.operation, point.mask_format, point.n, point.dtype),
        "in_place_restored": bool(grid.variant(point.operation) == "inplace"),
        "device": prov.device_name, "threads": prov.threads(), "warmup": timing.WARMUP, **env.versions(),
    }


COPY_GB_PER_S: dict[tuple, float] = {}  # (device, group) -> GB/s of the group's copy in this run


def _throughput(info: dict, seconds: float, group: str) -> dict:
    """GB/s, and % of the copy of the same group and device (None when the copy did not run
    or cannot be the ceiling: see bench.report.IMPLAUSIBLE)."""
    gb_per_s = info["bytes"] / seconds / 1e9
    key = (info["device"], group)
    if info["operation"] == "copy":
        COPY_GB_PER_S[key] = gb_per_s
    copy = COPY_GB_PER_S.get(key)
    implausible = copy is not None and report.beats_ceiling(gb_per_s, copy)
    return {"gb_per_s": gb_per_s, "copy_gb_per_s": copy, "ceiling_implausible": implausible,
            "pct_of_copy": None if copy is None or implausible else 100.0 * gb_per_s / copy}


def torch_bfloat16():
    import torch

    return torch.bfloat16


def _to_host(a):
    if hasattr(a, "copy_to_host"):
        return a.copy_to_host()
    if hasattr(a, "detach"):
        a = a.detach().cpu()
        if a.dtype == torch_bfloat16():
            import torch

            return a.view(torch.uint16).numpy().view(vocab.np_dtype("bfloat16"))
        return a.numpy()
    return np.asarray(a)


def _check(point, prov, result):
    """Cheap sanity of one result: the right size and dtype, and each value 0 or x / (1 - p)
    (up to the one rounding of 16-bit results); for channel dropout, whole planes kept or
    dropped."""
    x = inputs.host_input(point.n, point.dtype)
    y = result[0] if isinstance(result, tuple) else result
    y = _to_host(y)
    assert y.dtype == x.dtype, (y.dtype, x.dtype)
    y = y.reshape(-1)
    assert y.shape == (point.n,)
    if point.operation == "copy":
        np.testing.assert_array_equal(y.view(np.uint8), x.view(np.uint8))
        return
    x32, y32 = x.astype(np.float64), y.astype(np.float64)
    scaled = x32 / (1 - point.p)
    ok = (y32 == 0) | np.isclose(y32, scaled, rtol=RTOL[point.dtype], atol=0)
    assert ok.all(), f"{point.id}: {int((~ok).sum())} values neither 0 nor x / (1 - p)"
    m = grid.mask_elements(point.operation, point.n)
    if grid.variant(point.operation) == "channel":
        planes = (y32 != 0).reshape(m, -1)  # one row per (sample, channel): H * W elements
        nonzero = (x32 != 0).reshape(m, -1)
        kept_planes = planes.any(axis=1)
        assert np.array_equal(planes, nonzero & kept_planes[:, None]), f"{point.id}: a channel partly dropped"
        if m >= 256:
            assert abs(kept_planes.mean() - (1 - point.p)) < 0.15, f"{point.id}: kept {kept_planes.mean():.3f}"
    elif point.n >= 2**10:
        kept = np.count_nonzero(y) / point.n
        assert abs(kept - (1 - point.p)) < 0.1, f"{point.id}: kept fraction {kept:.3f}"


def test_dropout_benchmark(benchmark, bench_point):
    point, group = bench_point
    prov = providers.get(point.provider)
    fn = prov.prepare(point.operation, point.mask_format, point.n, point.p, point.dtype)
    benchmark.group = group
    info = benchmark.extra_info
    info.update(_info(point, prov))
    if prov.clock == "host":
        timed = fn
    else:
        sync = prov.synchronize

        def timed():
            out = fn()
            sync()
            return out

    setup = getattr(fn, "setup", None)  # in place: restore the input, untimed, before each call
    if benchmark.enabled:
        timing.warm_up(fn, prov.synchronize, setup=setup)
    if setup is None:
        result = benchmark(timed)
    else:
        result = benchmark.pedantic(timed, setup=setup, rounds=25 if benchmark.enabled else 1, iterations=1)
    if benchmark.enabled:
        seconds = benchmark.stats.stats.median
        if prov.clock != "host":
            t = timing.measure(fn, clock=prov.clock, repeats=50, budget_s=1.0, setup=setup)
            seconds = t.median
            info.update(
                event_seconds_median=t.median, event_seconds_p20=t.p20, event_seconds_p80=t.p80,
                event_repeats=t.repeats, event_inner=t.inner, event_host_seconds=t.host_seconds,
            )
        info.update(_throughput(info, seconds, group))
    _check(point, prov, result)
