"""The conformance machinery itself (issue 10): the IMPL loader, capabilities, the three
ways in (CLI, pytest plugin, DataFrame), the budget, and caches keyed by the object.
Small and quick: the checks' power is shown in tests/stats/test_mutants.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import kernels
from reference.conformance import Capabilities, from_api, from_callable, loader, runner
from reference.conformance import cli as check
from reference.conformance.stats import budget, sampling
from reference.conformance.stats.battery import by_label

SEMANTIC = ["semantic/*"]


def test_impl_strings_resolve():
    assert loader.load("reference").claims_contract
    assert loader.load("reference") is loader.load("reference")  # one object per IMPL string
    mutant = loader.load("reference.conformance.mutants:no_scale")
    assert not mutant.claims_contract
    assert mutant.capabilities == Capabilities(**type(mutant.source).DROPOUT_CAPABILITIES)
    f = loader.load("reference.conformance.adapters.textbook:textbook_numpy")  # a plain f(x, p, seed)
    assert not f.capabilities.backward and not f.capabilities.offset
    for bad in ("no-such-impl", "no_such_module:x", "reference.conformance.mutants:nope"):
        with pytest.raises(ValueError):
            loader.load(bad)


def test_capabilities_are_probed_and_missing_ones_are_not_supported_rows():
    def f(x, p, seed):
        if not 0 <= p <= 1:
            raise ValueError(p)
        rng = np.random.default_rng(seed)
        return (x * (rng.random(x.shape) >= p)) / (1 - p) if p < 1 else np.zeros_like(x)

    impl = from_callable(f, "mine")
    run = runner.run(impl, quick=True, names=SEMANTIC)
    status = {r.name: r.status for r in run.results}
    assert status["semantic/backward"] == status["semantic/offset_shift"] == "not supported"
    assert status["semantic/p0_identity"] == "pass"
    assert run.verdict == "pass"


def test_cli_exit_codes_and_json(tmp_path):
    out = tmp_path / "r"
    args = ["--quick", "--only", "semantic/*", "--only", "keep_rate/p=0.5", "--out", str(out)]
    assert check.main(["reference", *args, "--json", str(tmp_path / "r.json")]) == 0
    doc = json.loads((tmp_path / "r.json").read_text())
    assert doc["impl"] == "reference" and doc["level"] == "contract" and doc["verdict"] == "pass"
    assert {"name", "passed", "p_value"} <= set(doc["checks"][0])
    assert any(c["p_value"] is not None for c in doc["checks"])
    assert (out / "report.md").exists() and (out / "checks.csv").exists()
    assert check.main(["reference.conformance.mutants:no_scale", *args]) == 1
    for bad in (["no-such-impl"], ["reference", "--level", "nope"], []):
        with pytest.raises(SystemExit) as e:
            check.main(bad)
        assert e.value.code == 2


def test_dataframe():
    df = runner.results_frame(loader.load("quant8"), quick=True, names=["keep_rate/p=0.01", "semantic/p0_identity"])
    assert list(df["name"]) == ["semantic/p0_identity", "keep_rate/p=0.01"]
    assert {"impl", "level", "status", "passed", "p_value", "effect"} <= set(df.columns)
    passed = df.set_index("name").loc["keep_rate/p=0.01", "passed"]
    assert passed is not None and not passed  # quant8 is biased


def test_pytest_plugin_from_any_directory(tmp_path):
    env = dict(os.environ, PYTHONPATH=os.getcwd())
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--dropout-impl", "reference",
           "--dropout-quick", "-k", "semantic or keep_rate"]
    assert subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True).returncode == 0
    bad = subprocess.run(cmd[:7] + ["reference.conformance.mutants:no_scale", "--dropout-quick", "-k", "mean_forward"],
                         cwd=tmp_path, env=env, capture_output=True)
    assert bad.returncode == 1


def test_caches_are_keyed_by_the_object_not_the_name():
    a = from_api(kernels.get_backend("reference"), "mine")
    b = from_api(sys.modules["reference.conformance.mutants"].BY_NAME["ignores_offset"], "mine")
    ka = sampling.keep_mask(a, 4096, 0.5, 7, 4096)
    kb = sampling.keep_mask(b, 4096, 0.5, 7, 4096)
    assert not np.array_equal(ka, kb)  # same name, different implementations: no shared sample


def test_budget_counts_distinct_events():
    probe = by_label()["keep_rate/p=0.5"]
    ref, cpu, torchlike = loader.load("reference"), loader.load("cpu"), loader.load("textbook-numpy")
    keys = {budget.hypothesis_key(probe, i, probe.n) for i in (ref, cpu)}
    assert len(keys) == 1  # bit-identical streams with the same seeds: one event
    assert budget.hypothesis_key(probe, torchlike, probe.n) not in keys  # its own RNG: its own event
    assert budget.hypothesis_key(probe, ref, budget.N_SIM) not in keys  # another sample size: another event
    pl = runner.plan(ref)
    assert pl.alpha == budget.FAMILY_ALPHA / pl.hypotheses


# --- issue 11: noise_shape, the 16-bit formats, in place --------------------------------------


def test_backends_declare_noise_shape_half_and_inplace():
    caps = loader.load("reference").capabilities
    assert caps.has("dtype:float16") and caps.has("dtype:bfloat16") and caps.has("noise_shape:any") and caps.inplace
    names = {c.name for c in runner.plan(loader.load("reference")).checks}
    assert {"semantic/noise_shape", "semantic/float16", "semantic/bfloat16", "semantic/inplace",
            "contract/noise_shape", "contract/float16", "contract/bfloat16",
            "noise_keep_rate/channel/p=0.1", "half_mean/float16/p=0.01"} <= names


def test_new_capabilities_are_probed():
    ref = kernels.get_backend("reference")

    class Elementwise:  # the backends' API without noise_shape, out or 16-bit input
        def dropout_forward(self, x, p, *, seed, offset=0, training=True, mask_format="bool"):
            if np.asarray(x).dtype.itemsize == 2:
                raise TypeError("float32 or float64 only")
            return ref.dropout_forward(x, p, seed=seed, offset=offset, training=training, mask_format=mask_format)

    class ChannelOnly:
        def dropout_forward(self, x, p, *, seed, offset=0, training=True, mask_format="bool", noise_shape=None):
            if noise_shape is not None and tuple(noise_shape) != tuple(x.shape[:2]) + (1,) * (x.ndim - 2):
                raise ValueError("channel dropout only")
            return ref.dropout_forward(x, p, seed=seed, offset=offset, training=training, mask_format=mask_format,
                                       noise_shape=noise_shape)

    e, c, full = from_api(Elementwise(), "e"), from_api(ChannelOnly(), "c"), from_api(ref, "r")
    assert e.capabilities.noise_shape is False and not e.capabilities.inplace
    assert e.capabilities.dtypes == ("float32", "float64")
    assert c.capabilities.noise_shape == "channel" and not c.capabilities.has("noise_shape:any")
    assert full.capabilities.noise_shape is True and full.capabilities.inplace
    assert set(full.capabilities.dtypes) == {"float32", "float64", "float16", "bfloat16"}
    status = {r.name: r.status for r in runner.run(e, quick=True, names=["semantic/*", "*noise*", "half*"]).results}
    assert {status[k] for k in ("semantic/noise_shape", "semantic/float16", "semantic/inplace",
                                "noise_keep_rate/channel/p=0.1", "half_mean/bfloat16/p=0.04")} == {"not supported"}
    run = runner.run(c, level="contract", quick=True, names=["*noise*"])
    status = {r.name: r.status for r in run.results}
    assert status == {"semantic/noise_shape": "pass", "contract/noise_shape": "pass",
                      "noise_keep_rate/channel/p=0.1": "pass", "noise_keep_rate/N1H1/p=0.5": "not supported"}


def test_half_mean_constant_exposes_a_second_rounding():
    import ml_dtypes

    from reference.conformance.stats import half_mean
    from reference.stream import scale_for

    for name, dt in (("float16", np.float16), ("bfloat16", ml_dtypes.bfloat16)):
        p = budget.HALF_MEAN_P[name]
        x = np.asarray(budget.HALF_MEAN_X[name], dtype=dt)
        want = half_mean.expected_kept(name, p)
        twice = float((x.astype(np.float32) * np.float32(scale_for(p, dt))).astype(dt))  # the scale rounded first
        divided = float((x.astype(np.float32) / np.float32(np.asarray(1 - p, dtype=dt))).astype(dt))  # x / keep16
        assert twice != want and divided != want, (name, want, twice, divided)
        if name == "bfloat16":  # float32 -> bfloat16 by truncation, not to nearest
            prod = np.asarray(x.astype(np.float32) * scale_for(p, np.float32), np.float32)
            truncated = float((prod.view(np.uint32) & np.uint32(0xFFFF0000)).view(np.float32))
            assert truncated != want, (want, truncated)


def test_torch_adapters_half_and_channel():
    pytest.importorskip("torch")
    import ml_dtypes

    from reference.conformance.arrays import bits_equal

    impl = loader.load("torch-dropout")
    x = np.linspace(-3, 3, 2 * 3 * 4 * 5).reshape(2, 3, 4, 5).astype(ml_dtypes.bfloat16)
    y, _ = impl.forward(x, 0.0, seed=1)
    assert y.dtype == x.dtype and bits_equal(y, x)  # ml_dtypes <-> torch bit for bit
    y, _ = impl.forward(np.ones((8, 16, 3, 3), np.float32), 0.5, seed=1, noise_shape=(8, 16, 1, 1))
    assert np.all((y == 0).all(axis=(2, 3)) | (y != 0).all(axis=(2, 3)))  # F.dropout2d: whole channels
