"""The Triton tutorial's seeded dropout (under TRITON_INTERPRET=1 without a GPU)."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

pytest.importorskip("torch")
if importlib.util.find_spec("triton") is None:  # not importorskip: Triton must come after the adapter
    pytest.skip("triton is not installed", allow_module_level=True)

from reference.conformance import runner  # noqa: E402
from reference.conformance.adapters import triton_seeded  # noqa: E402  (sets TRITON_INTERPRET at collection)


@pytest.fixture(scope="module")
def impl():
    try:
        return triton_seeded.make()
    except RuntimeError as e:  # Triton imported earlier in this process without the interpreter
        pytest.skip(str(e))


def test_semantic_verdicts(impl):
    names = ["semantic/p0_identity", "semantic/p1_zeros", "semantic/kept_scaled", "semantic/shape_dtype",
             "semantic/bad_p", "semantic/seeds_differ", "semantic/float16"]
    got = {r.name: (r.status, r.detail) for r in runner.run(impl, names=names, quick=True).results}
    assert {k: s for k, (s, _) in got.items()} == {n: "pass" for n in names} | {"semantic/bad_p": "fail"}
    assert got["semantic/bad_p"][1] == "accepted p = [-0.1, 1.5, nan, inf]"  # the tutorial checks no p


def test_the_seed_is_64_bits(impl):
    """The tutorial says "an int32 seed"; tl.rand keys Philox with both halves of a 64-bit one."""
    x = np.ones(4096, np.float32)
    a, _ = impl.forward(x, 0.5, seed=5)
    for other in (5 + 2**32, 5 ^ 2**63):
        b, _ = impl.forward(x, 0.5, seed=other)
        assert 0.4 < np.mean((a != 0) == (b != 0)) < 0.6


def test_the_mask_does_not_depend_on_the_block_size(impl):
    import torch

    kernel, interpreted = triton_seeded._kernel()
    x = torch.ones(3000, device="cpu" if interpreted else "cuda")
    y = [torch.empty_like(x) for _ in range(2)]
    kernel[(3,)](x, y[0], 3000, 0.5, 77, BLOCK_SIZE=1024)
    kernel[(1,)](x, y[1], 3000, 0.5, 77, BLOCK_SIZE=4096)
    assert torch.equal(y[0], y[1])
