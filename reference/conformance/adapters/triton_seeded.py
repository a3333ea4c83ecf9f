"""Triton's seeded ("low-memory") dropout, the kernel of the official tutorial
(triton-lang/triton, python/tutorials/04-low-memory-dropout.py) as written: one program per
``BLOCK_SIZE`` elements, ``random = tl.rand(seed, offsets); x_keep = random > p;
output = tl.where(x_keep, x / (1 - p), 0.0)``, with the element index as the Philox counter.

Compiled on a GPU (the tutorial's ``BLOCK_SIZE = 1024``; inputs copied to the device and
back). Without one it runs under Triton's interpreter (``TRITON_INTERPRET=1``, NumPy on the
CPU): set here before Triton is first imported, because the interpreter only works when
``triton.language``'s own jit functions (``tl.rand``) were made under it. A process that
imported Triton earlier without it (``torch.compile`` imports Triton) cannot run this adapter:
it raises and says so. The interpreter uses blocks of up to 2**16 elements (8.6 M elements/s
measured against 0.25 M at 1024); the mask does not depend on the block size, since the
counter is the element's index.

The tutorial calls the seed "a single int32 seed", but ``tl.rand`` takes any integer up to
64 bits: Triton 3.9's Philox uses the seed's low and high 32 bits as its two key words
(``seed + 2**32`` gives an unrelated mask), so the seed is passed whole. The tutorial's host
function asserts a contiguous input: it gets C-order copies, so a view draws the mask of its
C-order copy (the element index is the counter).

Under the interpreter :func:`make` is ``simulated`` (the CUDA simulator's sample sizes: a run
takes 4 s) and :func:`make_full_sizes` is not (a full run 125 to 168 s, ``--quick`` 75 to 96 s, on
2 shared cores; half of it is ``mean_seeds_forward``: 4096 one-element calls of about 6 ms
per p).

Known findings (triton 3.9, interpreter): p is never checked (p < 0, p > 1, NaN and inf
accepted); a dropped NaN becomes 0 (``tl.where``); kept values are ``x / (1 - p)``
with ``p`` rounded to float32 (within 1 ulp of ``x * scale``). The interpreter converts
float32 to bfloat16 by truncation (its ``cast_impl`` passes no rounding mode) where compiled
Triton rounds to nearest: 42 % of the kept bfloat16 values of ``linspace(1, 2, 4096)`` at
p = 0.3 are 1 ulp below ``round16(x * scale32)``, within ``semantic/bfloat16``'s 1-ulp
tolerance; ``half_mean/bfloat16/p=0.04`` (x = 1.03125, chosen where truncation, a scale
rounded first and ``x / round16(1 - p)`` all move the kept value) sees the bias. An artifact of
the interpreter, not of the kernel (the GPU path is not run here).
"""

from __future__ import annotations

import functools
import os

import numpy as np

from reference import vocab
from reference.conformance.protocol import Capabilities, Implementation

from .torch_cpu import to_numpy, to_torch

GPU_BLOCK_SIZE = 1024      # the tutorial's
INTERPRETER_BLOCK_MAX = 2**16  # the interpreter's cost is per program: few, large blocks


def _gpu() -> bool:
    import torch

    return torch.cuda.is_available()


def _prepare_interpreter() -> None:
    if not _gpu():
        os.environ.setdefault("TRITON_INTERPRET", "1")


_prepare_interpreter()  # at import: the loader imports this module before anything calls triton


@functools.cache
def _kernel():
    """The tutorial's kernel, made after TRITON_INTERPRET is settled."""
    import triton
    import triton.language as tl

    knobs = getattr(triton, "knobs", None)  # recent tritons; older ones read the variable directly
    interpreted = knobs.runtime.interpret if knobs is not None else os.environ.get("TRITON_INTERPRET") == "1"
    if interpreted and type(tl.rand).__name__ != "InterpretedFunction":
        raise RuntimeError("Triton was imported before TRITON_INTERPRET=1 was set (torch.compile imports it), so "
                           "its interpreter cannot run tl.rand in this process; start Python with TRITON_INTERPRET=1")
    if not interpreted and not _gpu():
        raise RuntimeError("no GPU and TRITON_INTERPRET is not 1: Triton cannot run here")

    @triton.jit
    def _seeded_dropout(x_ptr, output_ptr, n_elements, p, seed, BLOCK_SIZE: tl.constexpr):
        # compute memory offsets of elements handled by this instance
        pid = tl.program_id(axis=0)
        block_start = pid * BLOCK_SIZE
        offsets = block_start + tl.arange(0, BLOCK_SIZE)
        # load data from x
        mask = offsets < n_elements
        x = tl.load(x_ptr + offsets, mask=mask)
        # randomly prune it
        random = tl.rand(seed, offsets)
        x_keep = random > p
        # write-back
        output = tl.where(x_keep, x / (1 - p), 0.0)
        tl.store(output_ptr + offsets, output, mask=mask)

    return _seeded_dropout, interpreted


def seeded_dropout(x, p, seed):
    """The tutorial's host function (torch tensors), with the block size per mode."""
    import torch
    import triton

    kernel, interpreted = _kernel()
    output = torch.empty_like(x)
    assert x.is_contiguous()
    n_elements = x.numel()
    block = min(INTERPRETER_BLOCK_MAX, max(16, triton.next_power_of_2(n_elements))) if interpreted \
        else GPU_BLOCK_SIZE
    kernel[(triton.cdiv(n_elements, block),)](x, output, n_elements, p, seed, BLOCK_SIZE=block)
    return output


def make() -> Implementation:
    """Compiled on a GPU; without one, the interpreter at the CUDA simulator's sample sizes."""
    return _make(full_sizes=False)


def make_full_sizes() -> Implementation:
    """The interpreter at the full sample sizes too (minutes: the module's docstring)."""
    return _make(full_sizes=True)


def _make(full_sizes: bool) -> Implementation:
    import torch
    import triton

    _, interpreted = _kernel()
    device = "cpu" if interpreted else "cuda"

    def forward(x, p, *, seed, offset, training, mask_format):
        t = to_torch(np.array(x, order="C")).to(device)  # the tutorial asserts a contiguous input
        return to_numpy(seeded_dropout(t, float(p), int(seed))), None

    caps = Capabilities(dtypes=vocab.DTYPES, backward=False, mask_formats=(), regenerate=False, offset=False,
                        training=False)
    if interpreted:
        where = "under TRITON_INTERPRET=1 on the CPU" + ("" if full_sizes else " (the CUDA simulator's small samples)")
    else:
        where = f"compiled on {torch.cuda.get_device_name()}"
    return Implementation("triton-seeded-dropout", forward, None, caps,
                          description=f"the Triton tutorial's seeded (low-memory) dropout, tl.rand(seed, offsets), "
                                      f"{where} (triton {triton.__version__})",
                          simulated=interpreted and not full_sizes)


_BUILT: dict = {}


def __getattr__(name):  # `dropout-check reference.conformance.adapters.triton_seeded:seeded`
    if name in ("seeded", "seeded_full_sizes"):
        if name not in _BUILT:
            _BUILT[name] = make() if name == "seeded" else make_full_sizes()
        return _BUILT[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
