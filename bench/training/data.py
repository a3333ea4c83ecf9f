"""Data for the training experiment: the standard IDX files (Fashion-MNIST, MNIST) when given,
else a deterministic synthetic set built to overfit (no download, no extra package).

IDX (http://yann.lecun.com/exdb/mnist/): a big-endian header ``0 0 type ndim`` then ``ndim``
32-bit sizes, then the data; ``.gz`` or raw. :func:`load_idx_dir` finds the four standard
files (``train-images-idx3-ubyte[.gz]``, ``train-labels-idx1-ubyte``, ``t10k-...``).
"""

from __future__ import annotations

import gzip
import os
import struct
from dataclasses import dataclass

import numpy as np

_IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
              0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


@dataclass
class Dataset:
    x_train: np.ndarray  # (n, 784) float32 in [0, 1]
    y_train: np.ndarray  # (n,) int64
    x_test: np.ndarray
    y_test: np.ndarray
    name: str
    description: str


def read_idx(path: str) -> np.ndarray:
    """One IDX file (gzip or raw) as a NumPy array of its shape."""
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise ValueError(f"{path}: not an IDX file (bad magic {raw[:4]!r})")
    code, ndim = raw[2], raw[3]
    if code not in _IDX_TYPES:
        raise ValueError(f"{path}: unknown IDX element type 0x{code:02x}")
    shape = struct.unpack(f">{ndim}I", raw[4:4 + 4 * ndim])
    dtype = np.dtype(_IDX_TYPES[code])
    start = 4 + 4 * ndim
    n = int(np.prod(shape)) if ndim else 1
    if len(raw) - start < n * dtype.itemsize:
        raise ValueError(f"{path}: truncated ({len(raw) - start} bytes of data, {n * dtype.itemsize} expected)")
    return np.frombuffer(raw, dtype, n, start).reshape(shape).astype(dtype.newbyteorder("="))


def write_idx(path: str, a: np.ndarray, compress: bool | None = None) -> None:
    """Write ``a`` (uint8 here) as an IDX file; gzip when the name ends with .gz (for tests)."""
    code = {np.dtype(np.uint8): 0x08, np.dtype(np.int8): 0x09}[a.dtype]
    raw = bytes([0, 0, code, a.ndim]) + struct.pack(f">{a.ndim}I", *a.shape) + np.ascontiguousarray(a).tobytes()
    if compress if compress is not None else path.endswith(".gz"):
        raw = gzip.compress(raw)
    with open(path, "wb") as f:
        f.write(raw)


def _find(directory: str, stem: str) -> str:
    for name in (stem, stem + ".gz", stem.replace("-idx", ".idx"), stem.replace("-idx", ".idx") + ".gz"):
        path = os.path.join(directory, name)
        if os.path.exists(path):
            return path
    raise FileNotFoundError(f"{directory}: no {stem}[.gz] (the standard Fashion-MNIST / MNIST file names)")


def load_idx_dir(directory: str, n_train: int | None = None, n_test: int | None = None) -> Dataset:
    """Fashion-MNIST (or MNIST) from its four IDX files; pixels scaled to [0, 1], flattened."""
    parts = {}
    for split, prefix in (("train", "train"), ("test", "t10k")):
        imgs = read_idx(_find(directory, f"{prefix}-images-idx3-ubyte"))
        labels = read_idx(_find(directory, f"{prefix}-labels-idx1-ubyte"))
        if imgs.shape[0] != labels.shape[0]:
            raise ValueError(f"{directory}: {prefix} has {imgs.shape[0]} images but {labels.shape[0]} labels")
        limit = n_train if split == "train" else n_test
        if limit is not None:
            imgs, labels = imgs[:limit], labels[:limit]
        parts[split] = ((imgs.reshape(len(imgs), -1).astype(np.float32) / np.float32(255.0)),
                        labels.astype(np.int64))
    (xt, yt), (xs, ys) = parts["train"], parts["test"]
    return Dataset(xt, yt, xs, ys, f"idx:{os.path.basename(os.path.normpath(directory))}",
                   f"IDX files from {directory}: {len(xt)} training and {len(xs)} test images of "
                   f"{xt.shape[1]} pixels, scaled to [0, 1]")


def synthetic(n_train: int = 1024, n_test: int = 2048, label_noise: float = 0.2, seed: int = 20240622,
              spread: float = 0.5, pixel_noise: float = 0.3, background: float = 0.3, protos: int = 5) -> Dataset:
    """A deterministic 10-class problem of 784 'pixels' in [0, 1] that the 784-256-256-10 MLP
    overfits without dropout.

    Each class has ``protos`` prototype images (pixels uniform in [0, 1], blurred along the rows); a
    sample is its prototype plus ``spread`` times a mix of 32 shared random directions
    (within-class variation) plus Gaussian pixel noise, clipped to [0, 1]. ``label_noise`` of
    the training labels (not the test labels) are replaced by random classes: a network that
    memorizes them loses test accuracy, which is what dropout is for. Same arguments, same
    arrays on every machine.
    """
    rng = np.random.default_rng(seed)
    k, rank = 10, 32
    raw = rng.uniform(0.0, 1.0, (k * protos, 784 + 4))
    proto = (sum(raw[:, j:j + 784] for j in range(5)) / 5.0).reshape(k, protos, 784)
    proto = (proto - proto.mean()) * 3.0 + 0.5 - background  # background pixels clip to 0, as in Fashion-MNIST
    dirs = rng.normal(0.0, 1.0 / np.sqrt(rank), (rank, 784))

    def draw(n):
        y = rng.integers(0, k, n)
        x = proto[y, rng.integers(0, protos, n)] + spread * rng.normal(0.0, 1.0, (n, rank)) @ dirs
        x += rng.normal(0.0, pixel_noise, (n, 784))
        return np.clip(x, 0.0, 1.0).astype(np.float32), y.astype(np.int64)

    xt, yt = draw(n_train)
    xs, ys = draw(n_test)
    flip = rng.random(n_train) < label_noise
    yt = yt.copy()
    yt[flip] = rng.integers(0, k, int(flip.sum()))
    return Dataset(xt, yt, xs, ys, "synthetic",
                   f"synthetic (bench/training/data.py: synthetic): 10 classes x {protos} prototype images of 784 "
                   f"pixels in [0, 1], within-class variation along {rank} shared directions (spread {spread}) "
                   f"and pixel noise (sd {pixel_noise}); {n_train} training samples with {label_noise:.0%} of their "
                   f"labels randomized, {n_test} clean test samples (seed {seed})")
