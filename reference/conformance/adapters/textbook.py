"""The textbook's from-scratch dropout (Dive into Deep Learning, section 4.6), the one our
users learn from, written literally, special cases for p = 0 and p = 1 as the book has them:

    def dropout_layer(X, dropout):
        assert 0 <= dropout <= 1
        if dropout == 1: return torch.zeros_like(X)   # all elements are dropped
        if dropout == 0: return X                     # all elements are kept
        mask = (torch.rand(X.shape) > dropout).float()
        return mask * X / (1.0 - dropout)

The book seeds nothing; the adapters seed the global generator with the whole 64-bit seed
(``np.random.seed([lo, hi])``, ``torch.manual_seed(seed)``).
"""

from __future__ import annotations

import numpy as np

from reference.conformance.protocol import from_callable


def dropout_layer_numpy(X, dropout):
    assert 0 <= dropout <= 1
    if dropout == 1:
        return np.zeros_like(X)
    if dropout == 0:
        return X
    mask = (np.random.rand(*X.shape) > dropout).astype(np.float32)
    return mask * X / (1.0 - dropout)


def dropout_layer_torch(X, dropout):
    import torch

    assert 0 <= dropout <= 1
    if dropout == 1:
        return torch.zeros_like(X)
    if dropout == 0:
        return X
    mask = (torch.rand(X.shape) > dropout).float()
    return mask * X / (1.0 - dropout)


def textbook_numpy(x, p, seed):
    np.random.seed([seed & 0xFFFFFFFF, seed >> 32])  # all 64 bits (init_by_array)
    return dropout_layer_numpy(x, p)


def textbook_torch(x, p, seed):
    import torch

    torch.manual_seed(seed)
    return dropout_layer_torch(torch.from_numpy(np.array(x, order="C")), p).numpy()  # 0-d stays 0-d


def make_numpy():
    return from_callable(textbook_numpy, "textbook-numpy",
                         description="d2l 4.6 dropout_layer, literally, in NumPy (legacy np.random)")


def make_torch():
    import torch

    return from_callable(textbook_torch, "textbook-torch",
                         description=f"d2l 4.6 dropout_layer, literally, in PyTorch (torch {torch.__version__})")


class GeneratorDropout:
    """The textbook's dropout_layer on a NumPy ``Generator`` held by the layer, as modern NumPy
    code writes it (``rng = np.random.default_rng(seed)`` once, then call after call); the
    book's special cases for p = 0 and 1 kept, the dtype of x kept."""

    def __init__(self, seed=0):
        self.rng = np.random.default_rng(seed)

    def reseed(self, seed):
        self.rng = np.random.default_rng(seed)

    def __call__(self, X, dropout):
        assert 0 <= dropout <= 1
        if dropout == 1:
            return np.zeros_like(X)
        if dropout == 0:
            return X
        mask = self.rng.random(X.shape) > dropout
        return (mask * X / (1.0 - dropout)).astype(X.dtype)


def make_numpy_generator():
    from reference.conformance.protocol import from_stateful

    f = GeneratorDropout()
    return from_stateful(f, "numpy-generator", reseed=f.reseed,
                         description="d2l 4.6 dropout_layer on a NumPy Generator held by the layer (np.random."
                                     f"default_rng, PCG64), call after call (NumPy {np.__version__})")
