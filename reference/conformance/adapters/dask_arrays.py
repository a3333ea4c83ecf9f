"""The ``dask`` backend behind the checker's protocol: NumPy in, dask arrays inside (chunked
so that a tensor spans several chunks), NumPy out."""

from __future__ import annotations

import numpy as np

from reference import vocab
from reference.conformance.protocol import Capabilities, Implementation

CHUNK_ELEMENTS = 2**20  # several chunks at the battery's 2**23 elements


def make() -> Implementation:
    import dask.array as da

    import kernels

    mod = kernels.get_backend("dask")

    def _d(a):
        a = np.asarray(a)
        if a.ndim == 0:
            return da.from_array(a)
        rows = max(1, CHUNK_ELEMENTS // max(1, a.size // max(1, a.shape[0])))
        return da.from_array(a, chunks=(rows,) + a.shape[1:])

    def _np(a):
        return None if a is None else np.asarray(a.compute() if hasattr(a, "compute") else a)

    def forward(x, p, *, seed, offset, training, mask_format, **noise):  # noise: noise_shape= when given
        y, m = mod.dropout_forward(_d(x), p, seed=seed, offset=offset, training=training, mask_format=mask_format,
                                   **noise)
        return _np(y), _np(m)

    def backward(g, p, *, mask, seed, offset, **noise):
        if mask is None:
            kw = {"seed": seed, "offset": offset}
        else:
            kw = {"mask": _d(mask) if mask.dtype == np.bool_ else mask}
        return _np(mod.dropout_backward(_d(g), p, **kw, **noise))

    # no out=: dask arrays are immutable, so in place is not supported
    return Implementation("dask", forward, backward, Capabilities(dtypes=vocab.DTYPES, noise_shape=True),
                          claims_contract=True,
                          description="kernels.dask on dask arrays (chunks of ~2**20 elements), computed to NumPy")
