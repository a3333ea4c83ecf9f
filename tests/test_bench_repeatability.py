"""bench.repeatability: the intervals of two runs compared row by row."""

from __future__ import annotations

import pandas as pd

from bench.repeatability import compare


def _run(lo, mid, hi):
    return pd.DataFrame([{"backend": "cpu", "n": 2**24, "p": 0.5, "dtype": "float32", "study": "sweep",
                          "operation": "forward", "mask_format": "none", "pct_of_copy": mid,
                          "pct_of_copy_p20": lo, "pct_of_copy_p80": hi, "copy_pairs": 25}])


def test_overlap_and_gap():
    assert compare(_run(60, 70, 80), _run(75, 85, 95))[2].endswith("| yes |")
    assert compare(_run(60, 70, 80), _run(81, 85, 95))[2].endswith("| **no** |")
