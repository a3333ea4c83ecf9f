"""The torch.compile adapter: compiled code is judged, a fallback to eager is an error."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from reference.conformance import runner  # noqa: E402
from reference.conformance.adapters import torch_compile  # noqa: E402


@pytest.fixture(scope="module")
def compiled():
    return torch_compile.make()


def _status(impl, names):
    return {r.name: (r.status, r.detail) for r in runner.run(impl, names=names, quick=True).results}


def test_semantic_verdicts(compiled):
    # kept_scaled passes too (full run) but compiles 10 graphs: left to dropout-check
    names = ["semantic/p0_identity", "semantic/eval_identity", "semantic/seeds_differ", "semantic/bad_p"]
    got = _status(compiled, names)
    assert {k: s for k, (s, _) in got.items()} == {n: "pass" for n in names} | {"semantic/bad_p": "fail"}
    assert got["semantic/bad_p"][1] == "accepted p = [nan]"  # eager F.dropout refuses NaN


def test_the_recompile_limit_is_an_error(monkeypatch):
    """Each p is a graph: a full run compiles 64, past Dynamo's default limit of 8, so the adapter
    raises the limit; were it hit, Dynamo would run eager code silently. Here a limit of 1."""
    monkeypatch.setattr(torch_compile, "_LIMIT", 1)
    impl = torch_compile.make()
    x = np.ones(64, np.float32)
    impl.forward(x, 0.25, seed=1)
    with pytest.raises(torch_compile.FellBackToEager, match="recompile limit"):
        impl.forward(x, 0.75, seed=1)


def test_fallback_random_matches_eager_and_default_does_not():
    import torch.nn.functional as F

    x = np.ones(4096, np.float32)
    torch.manual_seed(5)
    eager = F.dropout(torch.ones(4096), 0.5).numpy()
    same, _ = torch_compile.make_fallback_random().forward(x, 0.5, seed=5)
    own, _ = torch_compile.make().forward(x, 0.5, seed=5)
    assert np.array_equal(same, eager)
    assert 0.4 < np.mean((own != 0) == (eager != 0)) < 0.6  # independent masks agree on about half


def test_forced_fallback_is_an_error_not_a_verdict():
    impl = torch_compile.make()
    with torch.compiler.set_stance("force_eager"):
        got = _status(impl, ["semantic/p0_identity"])
    status, detail = got["semantic/p0_identity"]
    assert status == "error" and "fell back to eager" in detail
    status, detail = _status(impl, ["semantic/kept_scaled"])["semantic/kept_scaled"]  # and stays so
    assert status == "error" and "fell back to eager" in detail
