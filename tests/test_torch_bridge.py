"""kernels/torch_bridge.py: gradcheck, bit identity with the reference, nn.Dropout's properties,
generator state and sharing. Run with the PyTorch env: /work/venv311/bin/python -m pytest."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from kernels.generator import StreamGenerator  # noqa: E402
from kernels.torch_bridge import KernelDropout, dropout, mask_numel, numpy_view  # noqa: E402
from reference import dropout as ref  # noqa: E402

DTYPES = {"float32": torch.float32, "float64": torch.float64, "float16": torch.float16, "bfloat16": torch.bfloat16}


def _np(t):
    return numpy_view(t).copy()


@pytest.mark.parametrize("mask", ["bits", "regenerate"])
@pytest.mark.parametrize("noise_shape", [None, (None, 1)])
def test_gradcheck_float64(mask, noise_shape):
    x = torch.randn(4, 6, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: dropout(t, 0.4, seed=3, offset=5, mask=mask, noise_shape=noise_shape),
                                    (x,))


@pytest.mark.parametrize("cpu_backend", ["cpu", "reference"])
@pytest.mark.parametrize("dtype", list(DTYPES))
@pytest.mark.parametrize("mask", ["bits", "regenerate"])
def test_bit_identical_to_reference(cpu_backend, dtype, mask):
    x = torch.randn(5, 333, dtype=torch.float32).to(DTYPES[dtype]).requires_grad_()
    y = dropout(x, 0.3, seed=2**40 + 17, offset=1001, mask=mask, backend=cpu_backend)
    g = torch.randn(5, 333).to(DTYPES[dtype])
    y.backward(g)
    y_ref, _ = ref.dropout_forward(_np(x), 0.3, seed=2**40 + 17, offset=1001)
    dx_ref = ref.dropout_backward(_np(g), 0.3, seed=2**40 + 17, offset=1001)
    assert y.dtype == x.dtype and x.grad.dtype == x.dtype
    assert np.array_equal(_np(y).view(np.uint8), y_ref.view(np.uint8))
    assert np.array_equal(_np(x.grad).view(np.uint8), dx_ref.view(np.uint8))


def test_noise_shape_and_non_contiguous_input():
    x = torch.randn(6, 8, 5)
    y = dropout(x, 0.5, seed=4, offset=2, noise_shape=(None, 1, None))
    assert np.array_equal(_np(y), ref.dropout_forward(x.numpy(), 0.5, seed=4, offset=2, noise_shape=(None, 1, None))[0])
    xt = x.transpose(0, 2)  # a view: the stream follows the logical (C) order, as the reference's
    yt = dropout(xt, 0.5, seed=4)
    assert np.array_equal(_np(yt), ref.dropout_forward(np.ascontiguousarray(xt.numpy()), 0.5, seed=4)[0])
    assert mask_numel((6, 8, 5), (None, 1, None)) == 30


def test_in_place():
    x = torch.randn(4, 64)
    keep = x.clone()
    y = dropout(x, 0.5, True, True, seed=8)
    assert y.data_ptr() == x.data_ptr()
    assert np.array_equal(_np(x), ref.dropout_forward(keep.numpy(), 0.5, seed=8)[0])
    a = torch.randn(4, 64, requires_grad=True)
    h = a * 2
    KernelDropout(0.5, inplace=True, generator=1)(h).sum().backward()
    assert ((a.grad == 0) | (a.grad == 4)).all()


def test_module_behaves_as_nn_dropout():
    m = KernelDropout(0.5, generator=1)
    assert isinstance(m, torch.nn.Module) and m.training
    x = torch.randn(16, 32, requires_grad=True)
    y = m(x)
    assert y.shape == x.shape and y.dtype == x.dtype
    kept = y != 0
    assert torch.equal(y[kept], x[kept] * 2)
    y.sum().backward()
    assert torch.equal(x.grad[~kept], torch.zeros_like(x.grad[~kept]))  # zero grad where dropped
    assert torch.equal(x.grad[kept], torch.full_like(x.grad[kept], 2.0))
    m.eval()
    assert m(x) is x  # eval: identity, as nn.Dropout
    assert torch.equal(KernelDropout(0.0, generator=2)(x), x)
    assert torch.equal(KernelDropout(1.0, generator=2)(x), torch.zeros_like(x))
    with pytest.raises(ValueError):
        KernelDropout(1.5)
    z = torch.randn(0, 3)
    assert KernelDropout(0.5, generator=3)(z).shape == (0, 3)
    seq = torch.nn.Sequential(torch.nn.Linear(3, 3), KernelDropout(0.2, generator=4))
    assert "KernelDropout(p=0.2" in repr(seq)


def test_calls_draw_fresh_masks_and_state_restores():
    m = KernelDropout(0.5, generator=99)
    x = torch.ones(8, 64)
    state = m.state_dict()
    a, b = m(x), m(x)
    assert not torch.equal(a, b)  # a fresh range every call
    m2 = KernelDropout(0.5, generator=0)
    m2.load_state_dict(state)
    assert torch.equal(m2(x), a) and torch.equal(m2(x), b)


def test_modules_sharing_a_generator_never_overlap():
    gen = StreamGenerator(5)
    m1, m2 = KernelDropout(0.5, generator=gen), KernelDropout(0.5, generator=gen)
    x = torch.ones(4, 10)
    starts = []
    for m in (m1, m2, m1):
        starts.append(gen.offset)
        y = m(x)
        assert torch.equal(y, torch.from_numpy(ref.dropout_forward(x.numpy(), 0.5, seed=5, offset=starts[-1])[0]))
    assert starts == [0, 40, 80]


def test_training_run_reproduced_from_a_checkpoint():
    """Save model, optimizer and generator state mid-run; the restored run repeats the rest."""
    def make():
        torch.manual_seed(0)
        return torch.nn.Sequential(torch.nn.Linear(10, 20), torch.nn.ReLU(), KernelDropout(0.5, generator=7),
                                   torch.nn.Linear(20, 2))

    data = torch.randn(32, 10)
    target = torch.randint(0, 2, (32,))

    def steps(net, opt, n):
        losses = []
        for _ in range(n):
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(net(data), target)
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
        return losses

    net = make()
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    steps(net, opt, 3)
    ckpt = {"net": {k: (v.clone() if torch.is_tensor(v) else dict(v)) for k, v in net.state_dict().items()},
            "opt": opt.state_dict()}
    rest = steps(net, opt, 3)
    net2 = make()
    net2.load_state_dict(ckpt["net"])
    opt2 = torch.optim.SGD(net2.parameters(), lr=0.1)
    opt2.load_state_dict(ckpt["opt"])
    assert steps(net2, opt2, 3) == rest
