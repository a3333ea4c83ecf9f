"""The one registry of dropout implementations: the table that the tests, the benchmarks and
the checker all read (as numbagg keeps one table its tests and benchmarks parametrize over).

Entries name their code by import strings, so reading the table imports nothing: ``kernels``
builds ``kernels.BACKENDS`` from the backends' rows without importing the checker, and the
checker's loader (``reference.conformance.loader``) imports a row's target only when asked.
A leaf: it imports nothing of the project.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Roles: our backends (held to the contract bit for bit), adapters of other people's
#: dropout (judged by the checker), and documented broken examples.
BACKEND, ADAPTER, EXAMPLE = "backend", "adapter", "example"


@dataclass(frozen=True)
class Entry:
    name: str
    target: str              # "package.module" (a backend module) or "package.module:factory"
    role: str
    arrays: str = "numpy"    # what its functions take and return: "numpy" or "dask"
    checker: str | None = None  # for a backend whose arrays are not NumPy: the checker's adapter
    extra: str | None = None    # the pip extra it needs ("dask", "cuda", "peers", "jax", "keras", "triton")
    summary: str = ""


ENTRIES: tuple[Entry, ...] = (
    Entry("reference", "reference.dropout", BACKEND, summary="the NumPy oracle"),
    Entry("cpu", "kernels.cpu", BACKEND, summary="Numba CPU-parallel kernels"),
    Entry("cuda", "kernels.cuda", BACKEND, extra="cuda",
          summary="numba.cuda kernels (a GPU or the CUDA simulator)"),
    Entry("dask", "kernels.dask", BACKEND, arrays="dask", extra="dask",
          checker="reference.conformance.adapters.dask_arrays:make",
          summary="Dask arrays in and out, the same bits whatever the chunking"),
    Entry("torch-dropout", "reference.conformance.adapters.torch_cpu:make_functional", ADAPTER,
          extra="peers", summary="PyTorch's torch.nn.functional.dropout on the CPU"),
    Entry("torch-nn-dropout", "reference.conformance.adapters.torch_cpu:make_module", ADAPTER,
          extra="peers", summary="PyTorch's torch.nn.Dropout module on the CPU"),
    Entry("torch-native-dropout", "reference.conformance.adapters.torch_cpu:make_native", ADAPTER,
          extra="peers", summary="PyTorch's torch.native_dropout on the CPU"),
    Entry("torch-dropout-stateful", "reference.conformance.adapters.torch_cpu:make_stateful", ADAPTER,
          extra="peers", summary="F.dropout on PyTorch's global generator, seeded once, call after call (stateful)"),
    Entry("torch-native-dropout-stateful", "reference.conformance.adapters.torch_cpu:make_native_stateful",
          ADAPTER, extra="peers", summary="torch.native_dropout on the global generator, call after call (stateful)"),
    Entry("numpy-generator", "reference.conformance.adapters.textbook:make_numpy_generator", ADAPTER,
          summary="the textbook's dropout_layer on a NumPy Generator held by the layer (stateful)"),
    Entry("torch-compile-dropout", "reference.conformance.adapters.torch_compile:make", ADAPTER, extra="peers",
          summary="torch.compile (Inductor, CPU) of F.dropout, Inductor's RNG; a fallback to eager is an error"),
    Entry("torch-compile-dropout-fallback-random", "reference.conformance.adapters.torch_compile:make_fallback_random",
          ADAPTER, extra="peers", summary="torch.compile (Inductor, CPU) of F.dropout, fallback_random: eager RNG"),
    Entry("triton-seeded-dropout", "reference.conformance.adapters.triton_seeded:make_full_sizes", ADAPTER,
          extra="triton",
          summary="the Triton tutorial's seeded dropout (tl.rand); its interpreter without a GPU (needs PyTorch too)"),
    Entry("jax-threefry", "reference.conformance.adapters.jax_random:make_threefry", ADAPTER, extra="jax",
          summary="Flax's nn.Dropout formula on jax.random threefry2x32, jax_threefry_partitionable=False"),
    Entry("jax-threefry-partitionable", "reference.conformance.adapters.jax_random:make_threefry_partitionable",
          ADAPTER, extra="jax",
          summary="Flax's nn.Dropout formula on threefry2x32, partitionable (JAX's current default)"),
    Entry("jax-rbg", "reference.conformance.adapters.jax_random:make_rbg", ADAPTER, extra="jax",
          summary="Flax's nn.Dropout formula on jax.random impl='rbg' (XLA RngBitGenerator)"),
    Entry("keras-random-dropout", "reference.conformance.adapters.keras3:make_random_dropout", ADAPTER,
          extra="keras", summary="Keras 3 keras.random.dropout with one SeedGenerator, JAX backend (stateful)"),
    Entry("keras-layers-dropout", "reference.conformance.adapters.keras3:make_layer", ADAPTER, extra="keras",
          summary="Keras 3 keras.layers.Dropout, eager, JAX backend (stateful)"),
    Entry("textbook-numpy", "reference.conformance.adapters.textbook:make_numpy", ADAPTER,
          summary="the textbook's from-scratch dropout_layer, in NumPy"),
    Entry("textbook-torch", "reference.conformance.adapters.textbook:make_torch", ADAPTER,
          extra="peers", summary="the textbook's from-scratch dropout_layer, in PyTorch"),
    Entry("quant8", "reference.conformance.adapters.quant8:make", EXAMPLE,
          summary="an 8-bit keep threshold: a documented example the suite rejects"),
)

BY_NAME = {e.name: e for e in ENTRIES}


def names(role: str | None = None, arrays: str | None = None) -> tuple[str, ...]:
    """Entry names in table order, optionally only one role and one array type."""
    return tuple(e.name for e in ENTRIES
                 if (role is None or e.role == role) and (arrays is None or e.arrays == arrays))


#: The backends that take NumPy arrays: what the project's tests parametrize over.
NUMPY_BACKENDS = names(BACKEND, "numpy")
