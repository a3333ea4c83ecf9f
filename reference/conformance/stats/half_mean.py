"""16-bit formats (float16, bfloat16): the mean of y over a large sample of a constant input.

The contract computes in float32 and rounds once (docs/RNG_STREAM.md), so a kept element is
``v = round16(x * scale32)`` and ``E[y] = q v`` (q the keep probability), which differs from
x by that one rounding. ``x`` is a constant chosen where a second rounding (the scale rounded
to the 16-bit format first, as a kernel that computes in the 16-bit type does) moves the kept
value by one ulp: the test sees it. Statistic: ``z = (mean(y)/v - q) / sqrt(q (1-q) / n)``,
two-sided normal p-value (the CLT for the binomial count; n q(1-q) > 8e4 at the default
size). A NaN or infinite mean is a p-value of 0.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

from reference import vocab
from reference.stream import scale_for

from . import budget
from .sampling import Probe, fmt_p, keep_prob, sizes


def expected_kept(name: str, p: float) -> float:
    """``round16(float32(x) * scale32)`` for the probe's constant x."""
    dt = vocab.np_dtype(name)
    x = np.asarray(budget.HALF_MEAN_X[name], dtype=dt)
    return float((x.astype(np.float32) * scale_for(p, np.float32)).astype(dt))


def mean_pvalue(y: np.ndarray, v: float, p: float) -> float:
    n = y.size
    t = float(np.mean(y.astype(np.float64))) / v
    if not math.isfinite(t):
        return 0.0
    q = keep_prob(p)
    z = (t - q) / math.sqrt(q * (1 - q) / n)
    return float(2 * stats.norm.sf(abs(z)))


def check_half_mean(impl, *, name, n, p, seed, offset, info=None) -> float:
    dt = vocab.np_dtype(name)
    y, _ = impl.forward(np.full(n, budget.HALF_MEAN_X[name], dtype=dt), p, seed=seed, offset=offset)
    v = expected_kept(name, p)
    if info is not None:  # what a failure prints: the mean of y, its expectation, the kept values seen
        y64 = y.astype(np.float64)
        kept = np.unique(y64[y64 != 0])
        info.update(observed=float(np.mean(y64)), expected=keep_prob(p) * v, kept_value=v,
                    kept_seen=[float(k) for k in kept[:3]], dtype=name)
    return mean_pvalue(y, v, p)


def _probe(name):
    p = budget.HALF_MEAN_P[name]
    label = f"half_mean/{name}/p={fmt_p(p)}"

    def run(impl, n, seeds):
        seed, offset = seeds(label)
        info: dict = {}
        return check_half_mean(impl, name=name, n=n, p=p, seed=seed, offset=offset, info=info), info

    return Probe(label, p, sizes(budget.N_MAIN, sim=budget.N_SIM), run, needs=(f"dtype:{name}",),
                 doc=f"{name}: mean of y over n copies of x = {budget.HALF_MEAN_X[name]} is "
                     "P(keep) round16(x scale32); CLT z-test")


def probes():
    for name in ("float16", "bfloat16"):
        yield _probe(name)
