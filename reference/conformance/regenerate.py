"""Every committed conformance report from one command:

    python -m reference.conformance.regenerate            # every registry entry this Python can load
    python -m reference.conformance.regenerate torch-dropout jax-threefry
    python -m reference.conformance.regenerate --index    # only the index table

Each implementation runs in a fresh process (``dropout-check IMPL --out reports/conformance/<slug>
--json .../result.json``: fixed seeds, default sizes), so one framework's global settings
(JAX's config, KERAS_BACKEND, TRITON_INTERPRET, torch's thread count) never leak into another's
report. An entry whose optional package is not installed here is skipped with the install hint
(the frameworks need their extras: ``pip install -e ".[frameworks]"``); ``cuda`` runs under the
CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``, reports/conformance/cuda-simulator) when asked by name.
Then the index (reports/conformance/README.md) is rewritten from every result.json there."""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path

from reference import registry

ROOT = Path("reports/conformance")
#: the import that tells whether an extra is installed here
_EXTRA_PROBE = {"peers": "torch", "jax": "jax", "keras": "keras", "triton": "triton", "dask": "dask",
                "cuda": "numba.cuda"}
#: reports beside the checks: registry name -> (module run with ``python -m``, file in its directory)
_BESIDE = {"torch-compile-dropout": ("reference.conformance.adapters.torch_compile", "parity.md")}
#: not run by default: dask (its chunks are the same bits: tests/test_dask.py), cuda (simulator, by name)
_NOT_BY_DEFAULT = ("dask", "cuda")


def _out_dir(name: str) -> str:
    return "cuda-simulator" if name == "cuda" else name


def installed(entry: registry.Entry) -> bool:
    mod = _EXTRA_PROBE.get(entry.extra or "")
    if mod is None:
        return True
    try:
        return importlib.util.find_spec(mod.split(".")[0]) is not None
    except (ImportError, ValueError):
        return False


def check_in_fresh_process(impl: str, out: Path, *extra: str, env=None) -> subprocess.CompletedProcess:
    """``dropout-check IMPL --out OUT --json OUT/result.json [extra]`` in a process of its own."""
    return subprocess.run([sys.executable, "-m", "reference.conformance", impl, *extra, "--out", str(out),
                           "--json", str(out / "result.json")], env=env, text=True, capture_output=True)


def run_one(name: str) -> int:
    out = ROOT / _out_dir(name)
    env = dict(os.environ)
    if name == "cuda":
        env["NUMBA_ENABLE_CUDASIM"] = "1"
    t0 = time.perf_counter()
    r = check_in_fresh_process(name, out, env=env)
    print(f"{name}: exit {r.returncode} in {time.perf_counter() - t0:.0f} s")
    if name in _BESIDE and r.returncode in (0, 1):
        mod, fname = _BESIDE[name]
        b = subprocess.run([sys.executable, "-m", mod], env=env, text=True, capture_output=True)
        if b.returncode == 0:
            (out / fname).write_text(b.stdout)
            print(f"  wrote {out / fname}")
    tail = [ln for ln in r.stdout.splitlines() if ln.strip()]
    print("  " + "\n  ".join(tail[:1] + tail[-1:]) if tail else r.stderr[-800:])
    return r.returncode


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m reference.conformance.regenerate", description=__doc__.split("\n")[0])
    ap.add_argument("names", nargs="*", help="registry names (default: every entry whose extra is installed)")
    ap.add_argument("--index", action="store_true", help="only rewrite the index table")
    args = ap.parse_args(argv)
    bad = [n for n in args.names if n not in registry.BY_NAME]
    if bad:
        ap.error(f"not in the registry: {bad} (dropout-check --list)")
    if not args.index:
        names = args.names or [e.name for e in registry.ENTRIES if e.name not in _NOT_BY_DEFAULT]
        for n in names:
            e = registry.BY_NAME[n]
            if not installed(e):
                print(f"{n}: skipped, {_EXTRA_PROBE[e.extra or '']} is not installed here "
                      f'(pip install -e ".[{e.extra}]")')
                continue
            if run_one(n) not in (0, 1):
                return 2
    from .report import index

    table = index(ROOT)
    for path, prefix in ((ROOT / "README.md", ""), (Path("README.md"), "reports/conformance/"),
                         (Path("docs/CONFORMANCE.md"), "../reports/conformance/")):
        if replace_table(path, table.replace("](", f"]({prefix}")):
            print(f"wrote the table in {path}")
    return 0


def replace_table(path: Path, table: str) -> bool:
    """Put ``table`` (the index, its legend line included) where the file has the index table."""
    if not path.exists():
        return False
    text = path.read_text()
    start = text.find("| implementation | level | verdict |")
    if start < 0:
        return False
    legend = "`pass (k)`: k checks ran and passed"
    end = text.find(legend, start)
    end = text.find("\n", end) + 1 if end >= 0 else text.find("\n\n", start) + 1
    path.write_text(text[:start] + table.rstrip("\n") + "\n" + text[end:])
    return True


if __name__ == "__main__":
    sys.exit(main())
