"""``torch.compile`` (Inductor on the CPU) of ``F.dropout``: what a compiled model's dropout does,
judged as compiled code, never as the eager PyTorch it can silently fall back to.

Compiled with ``dynamic=True`` and ``fullgraph=True`` (no graph breaks): one graph per p,
dtype, number of dimensions, layout and ``training`` (and sizes 0 and 1, which Dynamo
specializes). ``p`` specializes by nature (``aten::dropout`` takes a
constant float; a model's ``nn.Dropout(p)`` is a constant too), so a run compiles a few dozen
graphs: the recompile limits are raised for these calls only and
``fail_on_recompile_limit_hit`` turns the limit into an error. Every call must run the
Inductor graph exactly once (counted in the backend); when it does not (Dynamo disabled,
``set_stance("force_eager")``, a skipped frame, the recompile limit), the call raises
:class:`FellBackToEager` and so does every later call of that implementation, so a check
shows an ERROR naming the fallback, never a verdict on eager PyTorch.

``make()``: Inductor's own RNG (Philox seeded from the global generator, so
``torch.manual_seed(seed)`` still reproduces a call); its masks are unrelated to eager's (at
p = 0.1, 0.5, 0.9 they agree on 82.0 %, 50.0 %, 82.0 % of 2**20 elements, what independent
masks give: p**2 + (1 - p)**2). ``make_fallback_random()``:
``fallback_random=True``, Inductor calls eager's RNG: the same bits as ``F.dropout`` (every
row of :func:`parity_table`, float32 and float16, 10**3 to 2**20 elements).
:func:`parity_table` measures both against eager (``python -m
reference.conformance.adapters.torch_compile`` prints it).

Known findings (torch 2.13 CPU, full run: 64 graphs, 12388 graph calls, no fallback):
``p = nan`` is accepted (all-NaN output; eager refuses it); a p outside [0, 1] is refused at
trace time with Dynamo's ``TorchRuntimeError``, not eager's ``ValueError``; the 16-bit
formats compute in float32 and round once (``half_mean`` passes where eager fails); the
seed's high 32 bits are ignored, as in eager (``torch.manual_seed``), and Inductor's CPU
kernel takes its per-call seed, drawn from the global generator, as ``uint32_t``
(``normalized_rand_cpu`` in the generated code): 2**32 masks per shape. With
``fallback_random`` the verdicts are eager's, failures included. As in eager, the mask follows
the memory layout (a transposed view drops another set than its C-order copy: the layout
notes). A full ``dropout-check`` takes 22 s with Inductor's on-disk caches warm and 105 s cold
(52 s of it compiling), on 2 shared cores; ``--quick`` 16 s warm.

dtypes: float32, float64, float16, bfloat16; inputs reach the compiled code in their own memory
layout, as in torch_cpu (``to_torch``).
"""

from __future__ import annotations

import statistics
import time
import types

from reference import vocab
from reference.conformance.protocol import Capabilities, Implementation

from .torch_cpu import to_numpy, to_torch

_LIMIT = 1 << 20  # recompiles allowed per code object: each p, dtype, ndim, layout... is one


class FellBackToEager(RuntimeError):
    """torch.compile ran eager PyTorch instead of the compiled graph."""


def _dropout(x, p, training):
    import torch.nn.functional as F

    return F.dropout(x, p, training=training)


class CompiledDropout:
    """``F.dropout`` under ``torch.compile`` with a backend that counts the graph's calls."""

    def __init__(self, fallback_random: bool = False):
        import torch

        self.fallback_random = fallback_random
        self.graph_calls = 0
        self.compiles: list[float] = []  # seconds in Inductor per graph compiled
        self.fell_back: str | None = None
        # its own code object: Dynamo keeps its cache and recompile counts per code object
        fn = types.FunctionType(_dropout.__code__.replace(), _dropout.__globals__, "compiled_dropout")
        self._fn = torch.compile(fn, backend=self._backend, dynamic=True, fullgraph=True)

    def _backend(self, gm, example_inputs):
        from torch._inductor.compile_fx import compile_fx

        t0 = time.perf_counter()
        compiled = compile_fx(gm, example_inputs, config_patches={"fallback_random": self.fallback_random})
        self.compiles.append(time.perf_counter() - t0)

        def run(*args):
            self.graph_calls += 1
            return compiled(*args)

        run._boxed_call = getattr(compiled, "_boxed_call", False)  # type: ignore[attr-defined]
        return run

    def _fail(self, why: str, cause=None):
        self.fell_back = self.fell_back or why
        raise FellBackToEager(f"torch.compile fell back to eager: {why}; the result would describe eager "
                              "PyTorch, not Inductor") from cause

    def __call__(self, x, p, training=True):
        import torch
        import torch._dynamo as dynamo

        if self.fell_back:
            self._fail(f"an earlier call did: {self.fell_back}")
        before = self.graph_calls
        try:
            with dynamo.config.patch(recompile_limit=_LIMIT, accumulated_recompile_limit=_LIMIT,
                                     fail_on_recompile_limit_hit=True):
                y = self._fn(x, p, training)
        except dynamo.exc.FailOnRecompileLimitHit as e:
            self._fail("Dynamo's recompile limit was hit", e)
        except dynamo.exc.TorchDynamoException:
            raise  # refused while compiling (a bad p): the compiled code's answer
        except Exception as e:
            if self.graph_calls == before:  # raised by eager code: no graph ran
                self._fail(f"no compiled graph ran and eager code raised {type(e).__name__}", e)
            raise
        calls = self.graph_calls - before
        if calls != 1:
            self._fail(f"{calls} compiled graph calls instead of 1 (Dynamo disabled, "
                       f"set_stance('force_eager'), a skipped frame or a graph break?)")
        if not isinstance(y, torch.Tensor):
            raise TypeError(f"compiled dropout returned {type(y).__name__}")
        return y


def _make(fallback_random: bool) -> Implementation:
    import torch

    compiled = CompiledDropout(fallback_random)

    def forward(x, p, *, seed, offset, training, mask_format):
        torch.manual_seed(seed)
        return to_numpy(compiled(to_torch(x), p, training)), None

    caps = Capabilities(dtypes=vocab.DTYPES, backward=False, mask_formats=(), regenerate=False, offset=False)
    rng = "fallback_random=True: eager's RNG" if fallback_random else "Inductor's RNG"
    name = "torch-compile-dropout" + ("-fallback-random" if fallback_random else "")
    impl = Implementation(name, forward, None, caps,
                          description=f"torch.compile(F.dropout), Inductor on the CPU, {rng}; a fallback to "
                                      f"eager is an error (torch {torch.__version__})",
                          source=compiled)
    return impl


def make() -> Implementation:
    """Inductor's own RNG (the default)."""
    return _make(False)


def make_fallback_random() -> Implementation:
    """``torch._inductor.config.fallback_random = True``: eager's RNG, the same bits as F.dropout."""
    return _make(True)


_LAZY = {"inductor": make, "inductor_fallback_random": make_fallback_random}
_BUILT: dict = {}


def __getattr__(name):  # `dropout-check reference.conformance.adapters.torch_compile:inductor`
    if name in _LAZY:
        if name not in _BUILT:
            _BUILT[name] = _LAZY[name]()
        return _BUILT[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _median_seconds(fn, reps: int) -> float:
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def parity_table(sizes=(1000, 2**16, 2**20), ps=(0.1, 0.5, 0.9), dtypes=("float32", "float16"),
                 seed: int = 1234, reps: int = 5):
    """Compiled against eager for the same seed, one row per (mode, dtype, size, p).

    ``equal_mask``: fraction of elements where ``(y != 0)`` agrees with eager's (beside
    ``if_independent``, p**2 + (1 - p)**2, what unrelated masks give); ``identical``:
    bit for bit; ``compile_s``: seconds in Inductor for the graphs first met at that row (0
    once compiled; Inductor's on-disk caches count as found); ``first_call_s``: the first
    call, Dynamo's tracing included; ``call_us`` / ``eager_us``: median per call."""
    import pandas as pd
    import torch
    import torch.nn.functional as F

    rows = []
    for mode, fallback_random in (("inductor", False), ("fallback_random", True)):
        compiled = CompiledDropout(fallback_random)
        for dt in dtypes:
            for n in sizes:
                x = torch.ones(n, dtype=getattr(torch, dt))
                for p in ps:
                    torch.manual_seed(seed)
                    want = F.dropout(x, p)
                    k0, t0 = len(compiled.compiles), time.perf_counter()
                    torch.manual_seed(seed)
                    got = compiled(x, p)
                    first = time.perf_counter() - t0
                    rows.append({
                        "mode": mode, "dtype": dt, "size": n, "p": p,
                        "equal_mask": float(((got != 0) == (want != 0)).double().mean()),
                        "if_independent": p * p + (1 - p) * (1 - p),
                        "identical": bool(torch.equal(got, want)),
                        "compile_s": sum(compiled.compiles[k0:]), "first_call_s": first,
                        "call_us": 1e6 * _median_seconds(lambda c=compiled, x=x, p=p: c(x, p), reps),
                        "eager_us": 1e6 * _median_seconds(lambda x=x, p=p: F.dropout(x, p), reps),
                    })
    return pd.DataFrame(rows)


def _main() -> None:  # python -m reference.conformance.adapters.torch_compile
    import pandas as pd
    import torch

    df = parity_table()
    print(f"# torch.compile (Inductor, CPU) against eager F.dropout: the same seed, the same masks?\n\n"
          f"`python -m reference.conformance.adapters.torch_compile` (torch {torch.__version__}). `equal`: the "
          "fraction of elements on which the compiled call's keep decision equals eager's (`if_independent`: "
          "what two independent masks give); `identical`: the outputs bit for bit; times are medians on a shared "
          "2-core machine (indicative).\n")
    with pd.option_context("display.width", 200, "display.max_rows", 500):
        print("```\n" + df.to_string(index=False, float_format=lambda v: f"{v:.4g}") + "\n```")


if __name__ == "__main__":
    _main()

