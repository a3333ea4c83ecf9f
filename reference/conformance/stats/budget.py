"""The battery's plan and its false-alarm budget: the ONE place that says which hypotheses
exist, at which sizes, and how the per-test level is set.

The per-test level is computed per run from the hypotheses that actually run
(:func:`alpha_for`): Bonferroni over the *distinct* hypotheses of the run, so with
``m`` of them each tested at ``ALPHA = FAMILY_ALPHA / m`` the probability that correct
implementations fail *any* test of the run, with fresh seeds, is at most ``FAMILY_ALPHA``
(whatever the dependence between the tests). Distinct means distinct events under the null
(:func:`hypothesis_key`): implementations that claim our stream (docs/RNG_STREAM.md) give
bit-identical samples for the same seeds, so the same probe at the same size on the
reference, cpu and a real-GPU cuda is one event, counted once; an implementation with its
own RNG adds its own events; a simulator-sized sample is a different event.
"""

from __future__ import annotations

FAMILY_ALPHA = 1e-4  # family-wise false-alarm probability per run (dropout-check or pytest session)

# --- sample sizes ---------------------------------------------------------------------
N_MAIN = 2**23      # elements per call of most tests
N_EXTREME = 2**25   # keep rate at p = 1e-6 and 1 - 1e-6: ~33.6 expected rare events
N_SLOW = 2**28      # `slow` marker: CPU backends only, generated in chunks of CHUNK
CHUNK = 2**24       # largest single call; bigger samples are consecutive offsets
SWEEP_K = 4096      # seeds in the "one element, many seeds" mean test
N_QUICK = 2**18     # --quick: elements per call (extreme p keep their size: rare events need it)
N_SIM = 4096        # CUDA simulator: elements per call
SWEEP_K_SIM = 24    # CUDA simulator: seeds in the sweep

# --- the plan: every hypothesis of the battery ------------------------------------------
KEEP_RATE_P = (0.01, 0.1, 0.5, 0.9, 0.99, 1e-6, 1 - 1e-6)
EXTREME_P = (1e-6, 1 - 1e-6)               # these use N_EXTREME
MOMENT_P = (0.1, 0.5, 0.9)                 # mean (forward, backward x2) and variance
SWEEP_FORWARD_P = (0.1, 0.5, 0.9)          # mean over seeds, one element, forward
SWEEP_BACKWARD_P = (0.5,)                  # ... backward (mask regenerated)
MODULI = (4, 32, 128, 2048)                # keep counts by position mod m (2048: a CUDA block, 4 cpu tiles)
BLOCK_OFFSETS = (1, 2, 3)                  # tensor starting at lane r of a Philox block
LAGS = (1, 2, 3, 4, 8, 64)
LAG_P = (0.5, 0.1)
MAX_PERIOD = 2**16                         # periodicity: every lag 1 .. MAX_PERIOD at once
# pairs of calls whose masks must be independent (and would coincide under a bug)
CROSS_PAIRS = ("seed+1", "seed+2**32", "seed^2**63", "seed^(2**32+1)",
               "offset+n", "offset+2**32", "offset+2**34")
# multi-dimensional inputs (2**23 elements each): pairs adjacent along every axis
SHAPES = ((2048, 4096), (128, 256, 256), (16, 32, 128, 128))
SHAPES_QUICK = ((256, 1024), (32, 64, 128), (8, 16, 32, 64))
SHAPES_SIM = ((32, 128), (8, 16, 32), (4, 8, 8, 16))
SLOW_KEEP_RATE_P = (0.5, 0.01, 1e-6, 1 - 1e-6)
# structured masks (implementations with noise_shape): keep rate per mask element, binomial;
# (name, x shape, noise shape, p) in full / quick / simulator sizes: 2**21 / 2**16 / 2**10 mask
# elements, broadcast over 4 elements each
NOISE_KEEP_RATE = (
    ("channel", "noise_shape:channel", 0.1,
     {"full": ((1024, 2048, 2, 2), (1024, 2048, 1, 1)), "quick": ((256, 256, 2, 2), (256, 256, 1, 1)),
      "sim": ((32, 32, 2, 2), (32, 32, 1, 1))}),
    ("N1H1", "noise_shape:any", 0.5,
     {"full": ((2048, 2, 1024, 2), (2048, 1, 1024, 1)), "quick": ((256, 2, 256, 2), (256, 1, 256, 1)),
      "sim": ((32, 2, 32, 2), (32, 1, 32, 1))}),
)
# 16-bit formats: mean of y over n elements of a constant x against P(keep) round16(x scale32);
# x chosen where rounding the scale to the format first (a second rounding) moves the kept value
# and where the kept value computed as x / round16(1 - p) in the format (Flax's and Keras's
# ``x / keep_prob``) and, in bfloat16, float32 -> bfloat16 by truncation (Triton's interpreter)
# move it too; in bfloat16 no x does all three at p = 0.01, so bfloat16 runs at p = 0.04
HALF_MEAN_P = {"float16": 0.01, "bfloat16": 0.04}
HALF_MEAN_X = {"float16": 1.015625, "bfloat16": 1.03125}
KS_CASES = ("consecutive", "seeds_low", "seeds_high", "far_counters")

# The CUDA simulator runs this subset (cuda also has to reproduce the reference bit for
# bit on the same samples, which carries the big-sample results of reference over to it).
SIM_KEEP_RATE_P = (0.1, 0.5, 0.9)
SIM_MOMENT_P = (0.5,)
SIM_SWEEP_FORWARD_P = (0.5,)
SIM_MODULI = (4, 32)
SIM_BLOCK_OFFSETS = (1,)
SIM_LAG_P = (0.5,)

# --- seeds ----------------------------------------------------------------------------
FIXED_MASTER_SEED = 0x5EED_D20F_0BA5_0004  # the CI's deterministic master seed


def hypothesis_key(probe, impl, n) -> tuple:
    """The event a probe tests on an implementation at size n (see the module docstring)."""
    if probe.stream_level:
        who = "stream"
    elif getattr(impl, "claims_contract", False):
        who = "contract-stream"
    else:
        who = impl  # its own RNG: its own events (keyed by the object)
    return (probe.label, repr(n), who)


def alpha_for(keys) -> float:
    """Per-test level for a run that tests the hypotheses ``keys`` (at least one)."""
    return FAMILY_ALPHA / max(1, len(set(keys)))
