"""Structured masks (``noise_shape``, docs/RNG_STREAM.md): the keep rate per mask element.

With a noise shape the decisions are the mask's elements, not x's: the number of kept mask
elements of a call is Binomial(m, q), m = prod(noise_shape), q = floor((1-p) 2**32) / 2**32.
A mask element's decision is read from x's element at index 0 along the shared axes (that
every element of its group agrees is the deterministic check semantic/noise_shape). Exact
two-sided binomial test, as keep_rate.py. Only implementations that declare (or are probed
for) ``noise_shape`` run it; the channel form runs on those that support only that form.
"""

from __future__ import annotations

import math

import numpy as np

from . import budget
from .keep_rate import binomial_pvalue
from .sampling import Probe, fmt_p, keep_prob


def kept_mask_elements(impl, x_shape, noise_shape, p, seed, offset) -> int:
    y, _ = impl.forward(np.ones(x_shape, np.float32), p, seed=seed, offset=offset, noise_shape=noise_shape)
    first = y[tuple(slice(0, 1) if k == 1 else slice(None) for k in noise_shape)]
    return int(np.count_nonzero(first))


DOC = ("with noise_shape, the kept count K of the m = prod(noise_shape) mask elements is Binomial(m, q); "
       "exact two-sided binomial test")


def _probe(name, need, p, shapes):
    label = f"noise_keep_rate/{name}/p={fmt_p(p)}"

    def run(impl, n, seeds):
        x_shape, ns = n
        seed, offset = seeds(label)
        kept = kept_mask_elements(impl, x_shape, ns, p, seed, offset)
        return binomial_pvalue(kept, math.prod(ns), p), {"kept": kept, "observed": kept / math.prod(ns),
                                                              "expected": keep_prob(p)}

    return Probe(label, p, dict(shapes), run, needs=(need,), doc=DOC)


def probes():
    for name, need, p, shapes in budget.NOISE_KEEP_RATE:
        yield _probe(name, need, p, shapes)
