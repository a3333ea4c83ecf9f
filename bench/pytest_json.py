"""Convert a pytest-benchmark ``--benchmark-json`` file into the records of a sweep.

The benchmarks of ``tests/test_bench_smoke.py`` put everything a row needs into
``extra_info`` (provider, operation, mask format, dtype, n, p, bytes, device, versions).
Times come from ``extra_info['event_seconds_*']`` where the benchmark timed a GPU with CUDA
events, else from pytest-benchmark's own statistics: p20 and p80 from the raw samples when
the file has them (``--benchmark-save-data``), else its first and third quartiles.

The suite benchmarks a copy in every comparison group; a size's copies become one row, the
fastest (the ceiling), as in a ``dropout-bench`` sweep.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from . import grid, traffic

REQUIRED = ("backend", "operation", "dtype", "n")


def load(path) -> dict:
    """The JSON document at ``path``; ``ValueError`` (in words) when it is missing, unreadable,
    not JSON or not a pytest-benchmark file."""
    try:
        with open(path) as f:
            doc = json.load(f)
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror or exc}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path} is not JSON ({exc})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("benchmarks"), list):
        raise ValueError(f"{path} is not a pytest-benchmark JSON file (no 'benchmarks' list); "
                         "write one with pytest --benchmark-json=FILE")
    return doc


def records(doc: dict, *, log=print) -> list[dict]:
    rows = []
    timestamp = doc.get("datetime", "")
    for bench in doc.get("benchmarks", []):
        info = bench.get("extra_info") or {}
        if not all(k in info for k in REQUIRED):
            if log:
                log(f"skipped {bench.get('name')!r}: no dropout-bench extra_info")
            continue
        stats = bench.get("stats") or {}
        mask = grid.mask_from_label(info.get("mask_format"))
        if "event_seconds_median" in info:
            med, p20, p80 = (info[f"event_seconds_{k}"] for k in ("median", "p20", "p80"))
            repeats, clock = info.get("event_repeats", np.nan), "cuda-event"
        else:
            data = stats.get("data")
            if data:
                med, p20, p80 = (float(np.percentile(data, q)) for q in (50, 20, 80))
                clock = "pytest-benchmark"
            else:
                med, p20, p80 = stats["median"], stats.get("q1", np.nan), stats.get("q3", np.nan)
                clock = "pytest-benchmark (p20/p80 = q1/q3)"
            repeats = stats.get("rounds", np.nan)
        n = int(info["n"])
        row = {
            "backend": info["backend"],
            "kind": info.get("kind", ""),
            "operation": info["operation"],
            "mask_format": grid.mask_label(mask),
            "dtype": info["dtype"],
            "n": n,
            "p": float(info["p"]) if info.get("p") is not None and info["operation"] != "copy" else np.nan,
            "seconds_median": float(med),
            "seconds_p20": float(p20),
            "seconds_p80": float(p80),
            "repeats": repeats,
            "inner": stats.get("iterations", 1) if clock != "cuda-event" else info.get("event_inner", 1),
            "clock": clock,
            "warmup": info.get("warmup", np.nan),
            "host_seconds_per_call": info.get("event_host_seconds", np.nan),
            "bytes": int(info.get("bytes", traffic.bytes_moved(info["operation"], mask, n, info["dtype"]))),
            "device": info.get("device", "unknown"),
            "numpy": info.get("numpy", ""),
            "numba": info.get("numba", ""),
            "numba_cuda": info.get("numba_cuda", ""),
            "torch": info.get("torch", ""),
            "threads": info.get("threads"),
            "timestamp": timestamp,
            "source": f"pytest-benchmark:{Path(bench.get('fullname', bench.get('name', ''))).name}",
        }
        rows.append(row)
    return _fastest_copies(rows)


def _fastest_copies(rows: list[dict]) -> list[dict]:
    fastest: dict[tuple, dict] = {}
    for r in rows:
        key = (r["device"], r["dtype"], r["n"])
        if r["operation"] == "copy" and (key not in fastest or r["seconds_median"] < fastest[key]["seconds_median"]):
            fastest[key] = r
    return [r for r in rows if r["operation"] != "copy" or fastest[(r["device"], r["dtype"], r["n"])] is r]
