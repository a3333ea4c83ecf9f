"""Where a benchmark ran: device names (also the report folder's name) and library versions."""

from __future__ import annotations

import contextlib
import functools
import importlib.metadata
import os
import platform
import re
import sys

from reference import vocab


def slug(text: str) -> str:
    """Lower-case words joined by '-': 'NVIDIA H100 80GB HBM3' -> 'nvidia-h100-80gb-hbm3'."""
    text = re.sub(r"\((?:R|TM|tm|r)\)", " ", text)
    words = re.findall(r"[a-z0-9]+(?:\.[0-9]+)?", text.lower())
    drop = {"processor", "cpu", "core", "with", "radeon", "graphics"}
    return "-".join(w for w in words if w not in drop) or "unknown"


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


@functools.cache
def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


@functools.cache
def cpu_name() -> str:
    """'cpu-<model slug>-<cores>c', e.g. 'cpu-amd-epyc-2c'."""
    return f"cpu-{slug(cpu_model())}-{cpu_count()}c"


@functools.cache
def gpu_name() -> str:
    """The current CUDA device's name as a slug, or 'cuda-simulator'."""
    if vocab.cuda_simulated():
        return "cuda-simulator"
    from numba import cuda

    name = cuda.get_current_device().name
    if isinstance(name, bytes):
        name = name.decode()
    return slug(name)


def device_name(device: str) -> str:
    """The name of the machine a provider on ``device`` ('cpu' or 'cuda') runs on."""
    return gpu_name() if device == "cuda" else cpu_name()


def available_memory(cuda: bool = False) -> dict[str, int]:
    """Free bytes per memory: 'host' (the kernel's MemAvailable, else the free pages) and, when
    ``cuda``, the current GPU's free memory; a memory that cannot be read is left out."""
    free = {}
    try:
        with open("/proc/meminfo") as f:
            free["host"] = next(int(line.split()[1]) * 1024 for line in f if line.startswith("MemAvailable:"))
    except (OSError, StopIteration, ValueError, IndexError):
        with contextlib.suppress(AttributeError, OSError, ValueError):
            free["host"] = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    if cuda and not vocab.cuda_simulated():
        try:
            from numba import cuda as nb_cuda

            free["cuda"] = int(nb_cuda.current_context().get_memory_info()[0])
        except Exception:  # no GPU or no driver: nothing to check against
            pass
    return free


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return ""


@functools.cache
def versions() -> dict[str, str]:
    """Versions of the libraries that shape the numbers ('' where not installed)."""
    return {
        "numpy": _version("numpy"),
        "numba": _version("numba"),
        "numba_cuda": _version("numba-cuda"),
        "torch": _version("torch"),
    }


def loadavg() -> float:
    """The 1-minute load average (NaN where the system has none)."""
    try:
        return float(os.getloadavg()[0])
    except (AttributeError, OSError):
        return float("nan")


def threading_layer() -> str:
    """Numba's threading layer ('omp', 'tbb', 'workqueue'), '' before any parallel call ran."""
    try:
        import numba

        return str(numba.threading_layer())
    except (ValueError, ImportError):
        return ""


def torch_threads():
    """PyTorch's intra-op threads where PyTorch is already imported (None otherwise: the
    environment is read, PyTorch is not imported just for it)."""
    torch = sys.modules.get("torch")
    try:
        return int(torch.get_num_threads()) if torch is not None else None
    except Exception:  # a half-imported or stubbed module
        return None


def pinned() -> dict:
    """What shapes a CPU number and can be read: CPU model, Numba's threads and threading
    layer, PyTorch's threads (one CSV column each)."""
    try:
        import numba

        nthreads = int(numba.get_num_threads())
    except ImportError:
        nthreads = None
    return {"cpu_model": cpu_model(), "numba_threads": nthreads, "threading_layer": threading_layer(),
            "torch_threads": torch_threads()}
