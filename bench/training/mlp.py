"""The textbook's MLP (d2l 4.6: 784-256-256-10, ReLU, dropout 0.2 then 0.5, softmax
cross-entropy, minibatch SGD) in NumPy, float32, whose dropout layers call any implementation:
a backend module (``kernels.BACKENDS[...]``) or any IMPL string of the checker.

How a layer gets its backward (:class:`DropoutLayer`), by what the implementation offers:

* ``backward`` with the packed mask ("bits"): the forward stores the 1-bit mask, the backward
  passes it back (our backends, the mutants, quant8);
* ``backward`` by regeneration only: the backward redraws the mask from ``(seed, offset)``;
* forward only (``f(x, p, seed) -> y``, e.g. ``textbook-numpy``): dropout is ``y = x * d``
  with ``d`` = mask / (1 - p) a function of the seed and the shape only, so the layer calls the
  implementation a second time, on ones, with the same seed: ``d = f(1, p, seed)``, and the
  backward is ``grad_x = grad_y * d``, exact, also where ``x == 0`` (after a ReLU, often),
  which ``y / x`` is not. The probe is checked against the output: where ``x != 0``, ``y``
  must be 0 exactly where ``d`` is (an implementation whose mask depends on ``x`` fails
  loudly). The probe's time is counted as dropout time.

Seeds: each call takes ``(seed, offset)`` from a :class:`kernels.generator.StreamGenerator`
(fresh positions every call); an implementation that takes no offset gets a seed of its own
per call (``take_seed``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from kernels.generator import StreamGenerator

SIZES = (784, 256, 256, 10)
DROPOUT_P = (0.2, 0.5)


def init_params(seed: int, sizes: Sequence[int] = SIZES) -> list[np.ndarray]:
    """``[W1, b1, W2, b2, W3, b3]``, ``W`` of shape (in, out), float32, initialized as PyTorch's
    ``nn.Linear`` does (d2l's concise implementation): weights and biases uniform in
    ``+-1/sqrt(fan_in)``. (The from-scratch section's N(0, 0.01^2) starts on a plateau that
    the few hundred steps of a small data set do not leave.) The same arrays start every
    variant of a seed, NumPy and PyTorch alike."""
    rng = np.random.default_rng([seed, 1])
    params = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        bound = 1.0 / np.sqrt(a)
        params += [rng.uniform(-bound, bound, (a, b)).astype(np.float32),
                   rng.uniform(-bound, bound, b).astype(np.float32)]
    return params


def load_impl(spec: str):
    """The checker's Implementation for an IMPL string (or a backend name)."""
    from reference.conformance.loader import load

    return load(spec)


class DropoutLayer:
    """Dropout on an Implementation (reference.conformance.protocol), with its own timing."""

    def __init__(self, p: float, impl: Any, generator: StreamGenerator, mask: str = "bits"):
        self.p, self.impl, self.generator = p, impl, generator
        caps = impl.capabilities
        self.uses_offset = caps.has("offset")
        if caps.has("backward") and mask == "bits" and caps.has("mask:bits"):
            self.mode = "bits"
        elif caps.has("backward") and caps.has("regenerate"):
            self.mode = "regenerate"
        elif caps.has("backward") and caps.has("mask:bool"):
            self.mode = "bool"
        else:
            self.mode = "probe"
        self.seconds = 0.0
        self.calls = 0
        self._saved: Any = None

    def _range(self, n: int) -> tuple[int, int]:
        if self.uses_offset:
            return self.generator.take(n)
        return self.generator.take_seed(n), 0

    def forward(self, x: np.ndarray, training: bool = True) -> np.ndarray:
        if not training or self.p == 0.0:
            self._saved = None
            return x
        t0 = time.perf_counter()
        seed, offset = self._range(x.size)
        if self.mode == "probe":
            y, _ = self.impl.forward(x, self.p, seed=seed)
            d, _ = self.impl.forward(np.ones_like(x), self.p, seed=seed)
            nz = x != 0
            if not np.array_equal(y[nz] == 0, d[nz] == 0):
                raise RuntimeError(f"{self.impl.name}: the mask of f(ones, p, seed) is not the mask of f(x, p, seed)")
            self._saved = d
        else:
            fmt = None if self.mode == "regenerate" else self.mode
            y, mask = self.impl.forward(x, self.p, seed=seed, offset=offset, mask_format=fmt)
            self._saved = (mask, seed, offset)
        self.seconds += time.perf_counter() - t0
        self.calls += 1
        return y

    def backward(self, g: np.ndarray) -> np.ndarray:
        if self._saved is None:
            return g
        t0 = time.perf_counter()
        if self.mode == "probe":
            dx = g * self._saved
        else:
            mask, seed, offset = self._saved
            dx = self.impl.backward(g, self.p, mask=mask, seed=seed, offset=offset)
        self._saved = None
        self.seconds += time.perf_counter() - t0
        return dx


class NumpyMLP:
    """784-256-256-10 with ReLU; ``dropouts[i]`` after hidden layer ``i`` (None: no dropout)."""

    def __init__(self, params: list[np.ndarray], dropouts: Sequence[DropoutLayer | None] = (None, None)):
        self.params = [p.copy() for p in params]
        self.dropouts = list(dropouts)

    def dropout_seconds(self) -> float:
        return sum(d.seconds for d in self.dropouts if d is not None)

    def logits(self, x: np.ndarray, training: bool = False) -> tuple[np.ndarray, list]:
        w = self.params
        cache = []
        h = x
        for i in range(2):
            a = h @ w[2 * i] + w[2 * i + 1]
            r = np.maximum(a, np.float32(0))
            d = self.dropouts[i]
            hd = d.forward(r, training) if d is not None else r
            cache.append((h, a, hd))
            h = hd
        return h @ w[4] + w[5], cache

    def predict(self, x: np.ndarray, batch: int = 4096) -> np.ndarray:
        return np.concatenate([self.logits(x[i:i + batch])[0].argmax(1) for i in range(0, len(x), batch)])

    def accuracy(self, x: np.ndarray, y: np.ndarray) -> float:
        return float((self.predict(x) == y).mean())

    def step(self, x: np.ndarray, y: np.ndarray, lr: float) -> tuple[float, int]:
        """One SGD step on a minibatch: (mean loss, correct predictions in training mode)."""
        w = self.params
        z, cache = self.logits(x, training=True)
        z = z - z.max(1, keepdims=True)
        ez = np.exp(z)
        s = ez.sum(1, keepdims=True)
        n = len(y)
        loss = float((np.log(s[:, 0]) - z[np.arange(n), y]).mean())
        correct = int((z.argmax(1) == y).sum())
        dz = ez / s
        dz[np.arange(n), y] -= 1
        dz /= np.float32(n)
        grads: list[np.ndarray] = [np.empty(0)] * 6
        h2 = cache[1][2]
        grads[4], grads[5] = h2.T @ dz, dz.sum(0)
        dh = dz @ w[4].T
        for i in (1, 0):
            h_in, a, _ = cache[i]
            d = self.dropouts[i]
            if d is not None:
                dh = d.backward(dh)
            da = dh * (a > 0)
            grads[2 * i], grads[2 * i + 1] = h_in.T @ da, da.sum(0)
            if i:
                dh = da @ w[2 * i].T
        lr32 = np.float32(lr)
        for p, g in zip(w, grads):
            p -= lr32 * g.astype(np.float32, copy=False)
        return loss, correct
