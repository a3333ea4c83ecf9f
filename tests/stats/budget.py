"""The battery's plan and its false-alarm budget: the ONE place that says how many
hypotheses are tested, at which sizes, and at which level.

Every statistical test of ``tests/stats`` draws its parameters from the tuples below, and
``COUNT`` is computed from those same tuples, so the per-test level ``ALPHA`` cannot drift
away from the number of hypotheses actually tested (``battery.py`` checks the count at
import, and the session guard in ``conftest.py`` fails a run that judges more distinct
hypotheses than ``COUNT``).

Bonferroni: with ``COUNT`` hypotheses each tested at ``ALPHA = FAMILY_ALPHA / COUNT``, the
probability that a correct implementation fails *any* test of the battery, with fresh
seeds, is at most ``FAMILY_ALPHA`` (whatever the dependence between the tests).
"""

from __future__ import annotations

import os

FAMILY_ALPHA = 1e-4  # family-wise false-alarm probability of the whole battery

# --- sample sizes (reference and cpu; the CUDA simulator uses the *_SIM sizes) --------
N_MAIN = 2**23      # elements per call of most tests
N_EXTREME = 2**25   # keep rate at p = 1e-6 and 1 - 1e-6: ~33.6 expected rare events
N_SLOW = 2**28      # `slow` marker: CPU backends only, generated in chunks of CHUNK
CHUNK = 2**24       # largest single call; bigger samples are consecutive offsets
SWEEP_K = 4096      # seeds in the "one element, many seeds" mean test
N_SIM = 4096        # CUDA simulator: elements per call
SWEEP_K_SIM = 24    # CUDA simulator: seeds in the sweep

# --- the plan: every hypothesis of the battery ------------------------------------------
KEEP_RATE_P = (0.01, 0.1, 0.5, 0.9, 0.99, 1e-6, 1 - 1e-6)
EXTREME_P = (1e-6, 1 - 1e-6)               # these use N_EXTREME
MOMENT_P = (0.1, 0.5, 0.9)                 # mean (forward, backward x2) and variance
SWEEP_FORWARD_P = (0.1, 0.5, 0.9)          # mean over seeds, one element, forward
SWEEP_BACKWARD_P = (0.5,)                  # ... backward (mask regenerated)
MODULI = (4, 32, 128, 2048)                # keep counts by position mod m (2048 = cpu tile)
BLOCK_OFFSETS = (1, 2, 3)                  # tensor starting at lane r of a Philox block
LAGS = (1, 2, 3, 4, 8, 64)
LAG_P = (0.5, 0.1)
CROSS_BLOCK = 1                            # lag-1 pairs that straddle a block boundary
CROSS_PAIRS = ("seed+1", "seed+2**32", "seed^2**63", "offset+n")
SLOW_KEEP_RATE_P = (0.5, 0.01, 1e-6, 1 - 1e-6)
KS_CASES = ("consecutive", "seeds_low", "seeds_high", "far_counters")

# The CUDA simulator runs this subset (cuda also has to reproduce the reference bit for
# bit on the same samples, which carries the big-sample results of reference over to it).
SIM_KEEP_RATE_P = (0.1, 0.5, 0.9)
SIM_MOMENT_P = (0.5,)
SIM_SWEEP_FORWARD_P = (0.5,)
SIM_MODULI = (4, 32)
SIM_BLOCK_OFFSETS = (1,)
SIM_LAG_P = (0.5,)

BACKENDS = ("reference", "cpu", "cuda")    # every backend counts, whichever run it is in

PER_BACKEND = (
    len(KEEP_RATE_P)
    + 3 * len(MOMENT_P)                    # mean forward, backward (regenerated, stored bits)
    + len(MOMENT_P)                        # variance
    + len(SWEEP_FORWARD_P) + len(SWEEP_BACKWARD_P)
    + len(MODULI) + len(BLOCK_OFFSETS)
    + len(LAGS) * len(LAG_P) + CROSS_BLOCK
    + len(CROSS_PAIRS)
)
PER_BACKEND_SLOW = len(SLOW_KEEP_RATE_P)
STREAM_LEVEL = len(KS_CASES)               # raw words of reference.stream, once per battery

COUNT = len(BACKENDS) * (PER_BACKEND + PER_BACKEND_SLOW) + STREAM_LEVEL
ALPHA = FAMILY_ALPHA / COUNT               # per-test level (two-sided p-value < ALPHA fails)

# --- seeds ----------------------------------------------------------------------------
FIXED_MASTER_SEED = 0x5EED_D20F_0BA5_0004  # the CI's deterministic master seed


def simulated(impl) -> bool:
    """True for the cuda backend running under the CUDA simulator (tiny sizes only)."""
    return getattr(impl, "NAME", None) == "cuda" and (
        bool(getattr(impl, "SIMULATED", False)) or os.environ.get("NUMBA_ENABLE_CUDASIM") == "1"
    )


def documented(fn):
    """Fill ``{ALPHA}``, ``{COUNT}``, ``{N_MAIN}``... in a test's docstring from this module."""
    if fn.__doc__:
        fn.__doc__ = fn.__doc__.format(**{k: v for k, v in globals().items() if k.isupper()})
    return fn
