"""One training run per (variant, seed): the textbook's hyperparameters, the same initial
weights and the same minibatch order for every variant of a seed; only dropout differs.

Variants: ``none`` (no dropout, the overfitting baseline), ``numpy:IMPL`` (the NumPy MLP with
the checker's IMPL as its dropout: our backends, ``textbook-numpy``, mutants, any IMPL string),
``torch:nn.Dropout`` (PyTorch's own) and ``torch:KernelDropout`` (the same PyTorch network on
our CPU kernels through kernels/torch_bridge.py).

Timing is measured inside the loop: the step (forward, backward, update) with perf_counter,
and the dropout calls with perf_counter around them (NumPy layers), or between module hooks
(PyTorch: forward pre-hook to forward hook, full backward pre-hook to backward hook).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from bench.training.data import Dataset
from bench.training.mlp import DROPOUT_P, DropoutLayer, NumpyMLP, init_params, load_impl
from kernels.generator import StreamGenerator, splitmix64

_DROPOUT_STREAM = 0x5EED_D80F


@dataclass(frozen=True)
class Config:
    epochs: int = 10
    batch: int = 256
    lr: float = 0.5
    p: tuple = DROPOUT_P
    eval_every: int = 1  # accuracies every this many epochs (and at the last)


@dataclass(frozen=True)
class Variant:
    label: str
    kind: str            # "none" | "numpy" | "torch-nn" | "torch-bridge"
    impl: str | None = None
    role: str = "ours"   # "baseline" | "ours" | "peer" | "textbook" | "mutant" | "user"


@dataclass
class RunResult:
    variant: Variant
    seed: int
    rows: list = field(default_factory=list)
    step_seconds: list = field(default_factory=list)
    dropout_seconds: list = field(default_factory=list)


def dropout_generator(seed: int) -> StreamGenerator:
    """The run's stream: one generator shared by both dropout layers of the network."""
    return StreamGenerator(splitmix64(seed ^ _DROPOUT_STREAM))


def batches(n: int, batch: int, seed: int, epoch: int):
    order = np.random.default_rng([seed, 2, epoch]).permutation(n)
    for i in range(0, n, batch):
        yield order[i:i + batch]


def _numpy_model(variant: Variant, params, seed: int, cfg: Config) -> NumpyMLP:
    if variant.kind == "none":
        return NumpyMLP(params)
    impl = load_impl(variant.impl or "reference")
    gen = dropout_generator(seed)
    return NumpyMLP(params, [DropoutLayer(p, impl, gen) for p in cfg.p])


def _train_numpy(variant: Variant, data: Dataset, seed: int, cfg: Config) -> RunResult:
    model = _numpy_model(variant, init_params(seed), seed, cfg)
    res = RunResult(variant, seed)
    trained = 0.0
    for epoch in range(1, cfg.epochs + 1):
        t_epoch = time.perf_counter()
        losses, weights = [], []
        for idx in batches(len(data.x_train), cfg.batch, seed, epoch):
            d0 = model.dropout_seconds()
            t0 = time.perf_counter()
            loss, _ = model.step(data.x_train[idx], data.y_train[idx], cfg.lr)
            res.step_seconds.append(time.perf_counter() - t0)
            res.dropout_seconds.append(model.dropout_seconds() - d0)
            losses.append(loss)
            weights.append(len(idx))
        trained += time.perf_counter() - t_epoch
        if _evaluated(epoch, cfg):
            res.rows.append(_row(variant, seed, epoch, float(np.average(losses, weights=weights)),
                                 model.accuracy(data.x_train, data.y_train), model.accuracy(data.x_test, data.y_test),
                                 trained))
    return res


def _evaluated(epoch: int, cfg: Config) -> bool:
    return epoch % cfg.eval_every == 0 or epoch == cfg.epochs


def _row(variant, seed, epoch, loss, train_acc, test_acc, seconds) -> dict:
    return {"implementation": variant.label, "kind": variant.kind, "role": variant.role, "seed": seed,
            "epoch": epoch, "train_loss": loss, "train_acc": train_acc, "test_acc": test_acc,
            "seconds": seconds}  # seconds: training time so far (evaluation excluded)


def _train_torch(variant: Variant, data: Dataset, seed: int, cfg: Config) -> RunResult:
    import torch
    from torch import nn

    params = init_params(seed)
    if variant.kind == "torch-nn":
        torch.manual_seed(splitmix64(seed ^ _DROPOUT_STREAM) & 0x7FFF_FFFF_FFFF_FFFF)
        drops = [nn.Dropout(p) for p in cfg.p]
    else:
        from kernels.torch_bridge import KernelDropout

        gen = dropout_generator(seed)
        drops = [KernelDropout(p, generator=gen, backend=variant.impl or "cpu") for p in cfg.p]
    lin = [nn.Linear(a, b) for a, b in zip((784, 256, 256), (256, 256, 10))]
    with torch.no_grad():
        for i, layer in enumerate(lin):
            layer.weight.copy_(torch.from_numpy(params[2 * i].T.copy()))
            layer.bias.copy_(torch.from_numpy(params[2 * i + 1]))
    net = nn.Sequential(lin[0], nn.ReLU(), drops[0], lin[1], nn.ReLU(), drops[1], lin[2])
    spent = [0.0]
    starts: dict = {}

    def pre(key):
        def hook(*_):
            starts[key] = time.perf_counter()
        return hook

    def post(key):
        def hook(*_):
            spent[0] += time.perf_counter() - starts.pop(key)
        return hook

    for j, d in enumerate(drops):
        d.register_forward_pre_hook(pre(("f", j)))
        d.register_forward_hook(post(("f", j)))
        d.register_full_backward_pre_hook(pre(("b", j)))
        d.register_full_backward_hook(post(("b", j)))
    opt = torch.optim.SGD(net.parameters(), lr=cfg.lr)
    loss_fn = nn.CrossEntropyLoss()
    xtr, ytr = torch.from_numpy(data.x_train), torch.from_numpy(data.y_train)
    xte, yte = torch.from_numpy(data.x_test), torch.from_numpy(data.y_test)

    def acc(x, y):
        net.eval()
        with torch.no_grad():
            a = float((net(x).argmax(1) == y).double().mean())
        net.train()
        return a

    res = RunResult(variant, seed)
    net.train()
    trained = 0.0
    for epoch in range(1, cfg.epochs + 1):
        t_epoch = time.perf_counter()
        losses, weights = [], []
        for idx in batches(len(xtr), cfg.batch, seed, epoch):
            ti = torch.from_numpy(idx)
            d0 = spent[0]
            t0 = time.perf_counter()
            opt.zero_grad()
            loss = loss_fn(net(xtr[ti]), ytr[ti])
            loss.backward()
            opt.step()
            res.step_seconds.append(time.perf_counter() - t0)
            res.dropout_seconds.append(spent[0] - d0)
            losses.append(float(loss.detach()))
            weights.append(len(idx))
        trained += time.perf_counter() - t_epoch
        if _evaluated(epoch, cfg):
            res.rows.append(_row(variant, seed, epoch, float(np.average(losses, weights=weights)), acc(xtr, ytr),
                                 acc(xte, yte), trained))
    return res


def train(variant: Variant, data: Dataset, seed: int, cfg: Config = Config()) -> RunResult:
    if variant.kind.startswith("torch"):
        return _train_torch(variant, data, seed, cfg)
    return _train_numpy(variant, data, seed, cfg)
