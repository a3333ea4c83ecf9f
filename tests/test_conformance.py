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

from bench import check
from kernels import registry
from reference.conformance import Capabilities, from_api, from_callable, runner
from reference.stats import budget, sampling
from reference.stats.battery import by_label

SEMANTIC = ["semantic/*"]


def test_impl_strings_resolve():
    assert registry.load("reference").claims_contract
    assert registry.load("reference") is registry.load("reference")  # one object per IMPL string
    mutant = registry.load("reference.stats.mutants:no_scale")
    assert not mutant.claims_contract and mutant.capabilities == Capabilities()
    f = registry.load("kernels.adapters.textbook:textbook_numpy")  # a plain f(x, p, seed)
    assert not f.capabilities.backward and not f.capabilities.offset
    for bad in ("no-such-impl", "no_such_module:x", "reference.stats.mutants:nope"):
        with pytest.raises(ValueError):
            registry.load(bad)


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
    assert check.main(["reference.stats.mutants:no_scale", *args]) == 1
    for bad in (["no-such-impl"], ["reference", "--level", "nope"], []):
        with pytest.raises(SystemExit) as e:
            check.main(bad)
        assert e.value.code == 2


def test_dataframe():
    df = runner.results_frame(registry.load("quant8"), quick=True, names=["keep_rate/p=0.01", "semantic/p0_identity"])
    assert list(df["name"]) == ["semantic/p0_identity", "keep_rate/p=0.01"]
    assert {"impl", "level", "status", "passed", "p_value", "effect"} <= set(df.columns)
    assert df.set_index("name").loc["keep_rate/p=0.01", "passed"] == False  # noqa: E712: quant8 is biased


def test_pytest_plugin_from_any_directory(tmp_path):
    env = dict(os.environ, PYTHONPATH=os.getcwd())
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--dropout-impl", "reference",
           "--dropout-quick", "-k", "semantic or keep_rate"]
    assert subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True).returncode == 0
    bad = subprocess.run(cmd[:7] + ["reference.stats.mutants:no_scale", "--dropout-quick", "-k", "mean_forward"],
                         cwd=tmp_path, env=env, capture_output=True)
    assert bad.returncode == 1


def test_caches_are_keyed_by_the_object_not_the_name():
    a = from_api(registry.backend_module("reference"), "mine")
    b = from_api(sys.modules["reference.stats.mutants"].BY_NAME["ignores_offset"], "mine")
    ka = sampling.keep_mask(a, 4096, 0.5, 7, 4096)
    kb = sampling.keep_mask(b, 4096, 0.5, 7, 4096)
    assert not np.array_equal(ka, kb)  # same name, different kernels: no shared sample


def test_budget_counts_distinct_events():
    probe = by_label()["keep_rate/p=0.5"]
    ref, cpu, torchlike = registry.load("reference"), registry.load("cpu"), registry.load("textbook-numpy")
    keys = {budget.hypothesis_key(probe, i, probe.n) for i in (ref, cpu)}
    assert len(keys) == 1  # bit-identical streams with the same seeds: one event
    assert budget.hypothesis_key(probe, torchlike, probe.n) not in keys  # its own RNG: its own event
    assert budget.hypothesis_key(probe, ref, budget.N_SIM) not in keys  # another sample size: another event
    pl = runner.plan(ref)
    assert pl.alpha == budget.FAMILY_ALPHA / pl.hypotheses
