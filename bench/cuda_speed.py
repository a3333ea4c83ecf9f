"""The H100 speed table of the CUDA backend, beside its ceilings, in one run.

    python -m bench.cuda_speed [--n 2**28] [--p 0.5] [--repeats 50] [--out FILE.md]

Times with CUDA events after warm-up and reports the median (and p20/p80) of the repeats:
a device-to-device copy (the ceiling: a numba.cuda copy kernel and, where PyTorch is
installed, ``Tensor.copy_``), ``kernels.cuda`` forward/backward in every mask format, and
``torch.native_dropout`` / ``native_dropout_backward`` as the peer. Each row counts the bytes
the operation must move (see ``bench.cuda_speed.BYTES``). "kernel" rows time the launch on
preallocated buffers; "API" rows time the public call, allocation of fresh mask included.
"""

from __future__ import annotations

import argparse
import platform
import sys

import numpy as np
from numba import cuda

from kernels import cuda as gpu
from reference.validate import n_mask_bytes


COPY_EPT = 8  # elements per thread of the copy ceiling: the dropout kernel's own access pattern


@cuda.jit
def copy_kernel(x, y):
    """y = x with the dropout kernel's mapping: COPY_EPT coalesced loads in flight per thread."""
    tpb = cuda.blockDim.x
    start = cuda.blockIdx.x * tpb * COPY_EPT + cuda.threadIdx.x
    xs = cuda.local.array(COPY_EPT, dtype=np.float32)
    for k in range(COPY_EPT):
        if start + k * tpb < x.size:
            xs[k] = x[start + k * tpb]
    for k in range(COPY_EPT):
        if start + k * tpb < x.size:
            y[start + k * tpb] = xs[k]


def time_cuda(fn, repeats: int, warmup: int = 5) -> np.ndarray:
    """Milliseconds of each of ``repeats`` calls, each bracketed by its own pair of CUDA events."""
    for _ in range(warmup):
        fn()
    cuda.synchronize()
    times = []
    for _ in range(repeats):
        start, end = cuda.event(), cuda.event()
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return np.asarray(times)


def _rows(n: int, p: float, repeats: int):
    itemsize = 4
    rng = np.random.default_rng(0)
    x_h = rng.standard_normal(n, dtype=np.float32)
    x = cuda.to_device(x_h)
    y = cuda.device_array_like(x)
    mask_bool = cuda.device_array(n, dtype=np.bool_)
    mask_bits = cuda.device_array(n_mask_bytes(n), dtype=np.uint8)
    gpu.dropout_forward(x, p, seed=1, mask_format="bool", out=y)
    blocks = (n + 256 * COPY_EPT - 1) // (256 * COPY_EPT)
    run = gpu._launch_kernel
    m = gpu._MODES
    cases = [
        ("copy (numba kernel)", "copy", 2 * itemsize, lambda: copy_kernel[blocks, 256](x, y)),
        ("kernels.cuda kernel", "forward, mask None", 2 * itemsize,
         lambda: run(m[None], True, x, y, None, None, 1, 0, p)),
        ("kernels.cuda kernel", "forward, mask bool", 2 * itemsize + 1,
         lambda: run(m["bool"], True, x, y, mask_bool, None, 1, 0, p)),
        ("kernels.cuda kernel", "forward, mask bits", 2 * itemsize + 0.125,
         lambda: run(m["bits"], True, x, y, None, mask_bits, 1, 0, p)),
        ("kernels.cuda kernel", "backward, regenerated", 2 * itemsize,
         lambda: run(m[None], True, x, y, None, None, 1, 0, p)),
        ("kernels.cuda kernel", "backward, mask bool", 2 * itemsize + 1,
         lambda: run(m["bool"], False, x, y, mask_bool, None, 1, 0, p)),
        ("kernels.cuda kernel", "backward, mask bits", 2 * itemsize + 0.125,
         lambda: run(m["bits"], False, x, y, None, mask_bits, 1, 0, p)),
        ("kernels.cuda API", "forward, mask None", 2 * itemsize,
         lambda: gpu.dropout_forward(x, p, seed=1, mask_format=None, out=y)),
        ("kernels.cuda API", "forward, mask bits", 2 * itemsize + 0.125,
         lambda: gpu.dropout_forward(x, p, seed=1, mask_format="bits", out=y)),
        ("kernels.cuda API", "backward, regenerated", 2 * itemsize,
         lambda: gpu.dropout_backward(x, p, seed=1, out=y)),
    ]
    try:
        import torch
    except ImportError:
        torch = None
    if torch is not None and torch.cuda.is_available():
        xt = torch.as_tensor(x_h, device="cuda")
        yt = torch.empty_like(xt)
        _, mt = torch.native_dropout(xt, p, True)
        scale = 1.0 / (1.0 - p)
        cases += [
            ("torch copy_", "copy", 2 * itemsize, lambda: yt.copy_(xt)),
            ("torch.native_dropout", "forward, mask bool", 2 * itemsize + 1,
             lambda: torch.native_dropout(xt, p, True)),
            ("torch native_dropout_backward", "backward, mask bool", 2 * itemsize + 1,
             lambda: torch.ops.aten.native_dropout_backward(xt, mt, scale)),
        ]
    for tpb, ept in ((256, 4), (128, 8), (256, 8), (512, 8), (256, 16), (128, 16)):
        def shaped(tpb=tpb, ept=ept):
            with gpu.launch_config(threads_per_block=tpb, elements_per_thread=ept):
                run(m[None], True, x, y, None, None, 1, 0, p)
        cases.append((f"kernels.cuda kernel tpb={tpb} ept={ept}", "forward, mask None", 2 * itemsize, shaped))
    copy_ms = None
    for provider, op, bytes_per_elem, fn in cases:
        ms = time_cuda(fn, repeats)
        med = float(np.median(ms))
        if provider == "copy (numba kernel)":
            copy_ms = med
        yield {
            "provider": provider, "operation": op, "bytes_per_element": bytes_per_elem,
            "ms_median": med, "ms_p20": float(np.percentile(ms, 20)), "ms_p80": float(np.percentile(ms, 80)),
            "gelem_per_s": n / med / 1e6, "gb_per_s": n * bytes_per_elem / med / 1e6,
            "copy_ms": copy_ms,
        }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", default="2**28", help="elements (float32), e.g. 2**28")
    ap.add_argument("--p", type=float, default=0.5)
    ap.add_argument("--repeats", type=int, default=50)
    ap.add_argument("--out", default=None, help="write the markdown table here too")
    args = ap.parse_args(argv)
    n = int(eval(args.n, {"__builtins__": {}}))  # "2**28" or a plain integer
    rows = list(_rows(n, args.p, args.repeats))
    copy_gbs = rows[0]["gb_per_s"]
    torch_fwd = next((r for r in rows if r["provider"] == "torch.native_dropout"), None)
    name = getattr(cuda.get_current_device(), "name", b"CUDA simulator")
    name = name.decode() if isinstance(name, bytes) else name
    lines = [
        f"n = {n} float32 elements, p = {args.p}, median of {args.repeats} CUDA-event timings after warm-up; "
        f"device: {name}; Python {platform.python_version()}, numpy {np.__version__}",
        "",
        "| provider | operation | bytes/elem | median ms | p20 ms | p80 ms | G elem/s | GB/s | % of copy | vs torch fwd (elem/s) |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        vs = f"{r['gelem_per_s'] / torch_fwd['gelem_per_s']:.2f}x" if torch_fwd and "forward" in r["operation"] else ""
        lines.append(
            f"| {r['provider']} | {r['operation']} | {r['bytes_per_element']:g} | {r['ms_median']:.4f} | "
            f"{r['ms_p20']:.4f} | {r['ms_p80']:.4f} | {r['gelem_per_s']:.1f} | {r['gb_per_s']:.0f} | "
            f"{100 * r['gb_per_s'] / copy_gbs:.1f}% | {vs} |"
        )
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
