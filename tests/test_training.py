"""bench/training: IDX loading, the synthetic set, the NumPy MLP's dropout layers on any IMPL,
and the experiment command's quick mode (NumPy only; the PyTorch rows join where torch is)."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

from bench.training import cli
from bench.training.data import load_idx_dir, read_idx, synthetic, write_idx
from bench.training.experiment import Config, Variant, train
from bench.training.mlp import DropoutLayer, NumpyMLP, init_params, load_impl
from kernels.generator import StreamGenerator
from reference import dropout as ref


@pytest.mark.parametrize("gz", [True, False])
def test_idx_round_trip_and_directory(tmp_path, gz):
    rng = np.random.default_rng(0)
    ext = ".gz" if gz else ""
    for prefix, n in (("train", 12), ("t10k", 5)):
        write_idx(str(tmp_path / f"{prefix}-images-idx3-ubyte{ext}"), rng.integers(0, 256, (n, 28, 28), dtype=np.uint8))
        write_idx(str(tmp_path / f"{prefix}-labels-idx1-ubyte{ext}"), rng.integers(0, 10, n, dtype=np.uint8))
    imgs = read_idx(str(tmp_path / f"train-images-idx3-ubyte{ext}"))
    assert imgs.shape == (12, 28, 28) and imgs.dtype == np.uint8
    d = load_idx_dir(str(tmp_path), n_train=10)
    assert d.x_train.shape == (10, 784) and d.x_test.shape == (5, 784)
    assert d.x_train.dtype == np.float32 and d.x_train.min() >= 0 and d.x_train.max() <= 1
    assert np.array_equal(d.x_train[0], imgs[0].reshape(-1) / np.float32(255))


def test_idx_errors(tmp_path):
    bad = tmp_path / "bad"
    bad.write_bytes(b"\x01\x02\x08\x01\x00\x00\x00\x05")
    with pytest.raises(ValueError, match="magic"):
        read_idx(str(bad))
    short = tmp_path / "short"
    short.write_bytes(b"\x00\x00\x08\x01\x00\x00\x00\x05\x01")
    with pytest.raises(ValueError, match="truncated"):
        read_idx(str(short))
    with pytest.raises(FileNotFoundError):
        load_idx_dir(str(tmp_path))


def test_synthetic_is_deterministic():
    a, b = synthetic(64, 32), synthetic(64, 32)
    assert np.array_equal(a.x_train, b.x_train) and np.array_equal(a.y_test, b.y_test)
    assert a.x_train.shape == (64, 784) and a.x_train.dtype == np.float32
    assert set(np.unique(a.y_train)) <= set(range(10))


@pytest.mark.parametrize("spec,mode", [("reference", "bits"), ("textbook-numpy", "probe"),
                                       ("reference.conformance.mutants:no_scale", "bits")])
def test_dropout_layer_modes(spec, mode):
    layer = DropoutLayer(0.5, load_impl(spec), StreamGenerator(3))
    assert layer.mode == mode
    x = np.maximum(np.random.default_rng(1).standard_normal((16, 40)).astype(np.float32), 0)  # zeros, as after ReLU
    y = layer.forward(x)
    g = np.random.default_rng(2).standard_normal(x.shape).astype(np.float32)
    dx = layer.backward(g)
    kept = (y != 0) | (x == 0) & (dx != 0)
    # backward: g * (mask * scale), the same scale the forward applied, exact also where x == 0
    scale = np.float32(1.0 if "no_scale" in spec else 2.0)
    assert np.array_equal(dx[kept], g[kept] * scale) and np.all(dx[~kept] == 0)
    if spec == "reference":
        assert np.array_equal(y, ref.dropout_forward(x, 0.5, seed=3, offset=0)[0])
    assert layer.forward(x, training=False) is x


def test_reference_and_cpu_train_identically():
    """One stream: the NumPy MLP on the reference and on the CPU kernels is the same run."""
    data = synthetic(256, 128)
    cfg = Config(epochs=2)
    a = train(Variant("r", "numpy", "reference"), data, 0, cfg)
    b = train(Variant("c", "numpy", "cpu"), data, 0, cfg)
    assert [(r["train_loss"], r["test_acc"]) for r in a.rows] == [(r["train_loss"], r["test_acc"]) for r in b.rows]


def test_gradients_match_finite_differences():
    rng = np.random.default_rng(0)
    params = [p.astype(np.float64) for p in init_params(0, (6, 5, 4, 3))]
    x, y = rng.standard_normal((7, 6)), rng.integers(0, 3, 7)
    m = NumpyMLP(params)

    def loss(ps):
        z = NumpyMLP(ps).logits(x)[0]
        z = z - z.max(1, keepdims=True)
        return float((np.log(np.exp(z).sum(1)) - z[np.arange(7), y]).mean())

    before = [p.copy() for p in m.params]
    m.step(x, y, lr=1.0)  # params -= grads: the update is the gradient
    for i in (0, 3, 4):
        num = np.zeros_like(before[i])
        for idx in np.ndindex(before[i].shape):
            ps = [p.copy() for p in before]
            ps[i][idx] += 1e-6
            up = loss(ps)
            ps[i][idx] -= 2e-6
            num[idx] = (up - loss(ps)) / 2e-6
        np.testing.assert_allclose(before[i] - m.params[i], num, atol=1e-6)


def test_quick_command_writes_the_report(tmp_path):
    out = str(tmp_path / "training")
    assert cli.main(["--quick", "--no-check", "--out", out]) == 0
    df = pd.read_csv(os.path.join(out, "training.csv"))
    assert {"implementation", "seed", "epoch", "train_loss", "train_acc", "test_acc", "seconds"} <= set(df.columns)
    assert {"none", "numpy:reference", "numpy:textbook-numpy"} <= set(df.implementation)
    assert df.seed.nunique() == 2
    for f in ("summary.md", "curves.png", "gap.png", "timing.png", "steps.csv"):
        assert os.path.getsize(os.path.join(out, f)) > 0
    with open(os.path.join(out, "summary.md")) as f:
        text = f.read()
    assert "synthetic" in text and "dropout share" in text
