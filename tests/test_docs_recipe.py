"""The by-hand recipe of docs/RNG_STREAM.md reproduces the reference: a user who follows the
document gets the same decisions, structured masks and 16-bit values included."""

from __future__ import annotations

from pathlib import Path

import ml_dtypes
import numpy as np

import reference

DOC = Path(__file__).resolve().parents[1] / "docs" / "RNG_STREAM.md"


def _recipe():
    text = DOC.read_text()
    code = text[text.index("## Reproduce a mask by hand"):].split("```python")[1].split("```")[0]
    namespace = {}
    exec(code, namespace)
    return namespace


def test_elementwise_and_structured_recipe():
    r = _recipe()
    x = np.random.default_rng(0).standard_normal((3, 4, 2, 2)).astype(np.float32)
    _, m = reference.dropout_forward(x, 0.3, seed=2**40 + 9, offset=5)
    assert all(r["keep"](i, 0.3, 2**40 + 9, 5) == m.ravel()[i] for i in range(x.size))
    ns = (3, 4, 1, 1)
    _, m = reference.dropout_forward(x, 0.3, seed=2**40 + 9, offset=5, noise_shape=ns)
    assert all(r["keep_structured"](idx, ns, 0.3, 2**40 + 9, 5) == m[idx[0], idx[1], 0, 0]
               for idx in np.ndindex(x.shape))


def test_half_recipe():
    r = _recipe()
    for dtype in (np.float16, ml_dtypes.bfloat16):
        x = (np.random.default_rng(1).standard_normal(200) * 1000).astype(dtype)
        y, m = reference.dropout_forward(x, 0.3, seed=3)
        by_hand = np.array([r["dropped16"](x[i], m[i], 0.3) for i in range(x.size)], dtype=dtype)
        np.testing.assert_array_equal(by_hand.view(np.uint16), y.view(np.uint16))
