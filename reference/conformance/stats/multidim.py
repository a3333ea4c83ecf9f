"""Multi-dimensional inputs: decisions are independent along every axis of a 2-D, 3-D and
4-D input.

An implementation may draw correctly for a 1-D input and still share decisions along an axis of a
bigger one (one mask for the whole batch, one per row broadcast along the columns, a
"spatial" dropout by mistake). For each axis, Pearson's chi-square of the 2 x 2 table of
pairs of elements adjacent along that axis (df = 1), as in neighbours.py.
"""

from __future__ import annotations

import numpy as np

from . import budget
from .neighbours import pair_phi, pair_pvalue
from .sampling import Probe, keep_mask

P_ND = 0.5


def check_axis(impl, *, shape, p, seed, offset, axis) -> float:
    kept = keep_mask(impl, tuple(shape), p, seed, offset)
    a = np.take(kept, np.arange(shape[axis] - 1), axis=axis)
    b = np.take(kept, np.arange(1, shape[axis]), axis=axis)
    return pair_pvalue(a.ravel(), b.ravel())


def _probe(i, axis):
    shapes = {"full": budget.SHAPES[i], "quick": budget.SHAPES_QUICK[i], "sim": budget.SHAPES_SIM[i]}
    ndim = len(budget.SHAPES[i])
    label = f"multidim/{ndim}d/axis={axis}"

    def run(impl, shape, seeds):
        seed, offset = seeds(f"multidim/{ndim}d")
        pv = check_axis(impl, shape=shape, p=P_ND, seed=seed, offset=offset, axis=axis)
        kept = keep_mask(impl, tuple(shape), P_ND, seed, offset)
        a = np.take(kept, np.arange(shape[axis] - 1), axis=axis)
        b = np.take(kept, np.arange(1, shape[axis]), axis=axis)
        return pv, {"observed": pair_phi(a.ravel(), b.ravel()), "expected": 0.0, "what": "correlation"}

    return Probe(label, P_ND, shapes, run,
                 doc=f"{ndim}-D input: decisions of neighbours along axis {axis} independent; chi-square 2 x 2")


def probes():
    for i, shape in enumerate(budget.SHAPES):
        for axis in range(len(shape)):
            yield _probe(i, axis)
