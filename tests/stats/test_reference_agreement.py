"""Not statistical (not in the budget): on the very samples the battery draws, every kernel
keeps exactly the elements the reference keeps and returns the same y / x. This is what
lets the big-sample results on the reference stand for the CUDA simulator run, which can
afford only small samples."""

from __future__ import annotations

import numpy as np
import pytest

from reference.conformance.loader import load, wrap
from reference.conformance.stats import budget
from reference.conformance.stats.sampling import fmt_p, forward_ratio, keep_mask


def _n(impl):
    return budget.N_SIM if impl.simulated else budget.N_MAIN


@pytest.mark.parametrize("p", budget.SIM_KEEP_RATE_P)
def test_kernel_keeps_what_reference_keeps(kernel, p, stat_seeds):
    impl, ref = wrap(kernel), load("reference")
    seed, offset = stat_seeds(f"mask/p={fmt_p(p)}")
    got, want = keep_mask(impl, _n(impl), p, seed, offset), keep_mask(ref, _n(impl), p, seed, offset)
    assert np.array_equal(got, want), f"{int(np.count_nonzero(got != want))} decisions differ"


@pytest.mark.parametrize("p", budget.SIM_MOMENT_P)
def test_kernel_scales_as_reference(kernel, p, stat_seeds):
    impl, ref = wrap(kernel), load("reference")
    seed, offset = stat_seeds(f"moments/p={fmt_p(p)}")
    got, want = forward_ratio(impl, _n(impl), p, seed, offset), forward_ratio(ref, _n(impl), p, seed, offset)
    assert np.array_equal(got, want)
