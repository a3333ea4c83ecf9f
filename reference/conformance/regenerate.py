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


def run_one(name: str) -> int:
    out = ROOT / _out_dir(name)
    env = dict(os.environ)
    if name == "cuda":
        env["NUMBA_ENABLE_CUDASIM"] = "1"
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "reference.conformance", name, "--out", str(out),
                        "--json", str(out / "result.json")], env=env, text=True, capture_output=True)
    print(f"{name}: exit {r.returncode} in {time.perf_counter() - t0:.0f} s")
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

    readme = ROOT / "README.md"
    text = readme.read_text()
    head, _, rest = text.partition("| implementation |")
    tail = rest[rest.index("\n- ") :] if "\n- " in rest else "\n"
    readme.write_text(head + index(ROOT).rstrip("\n") + "\n" + tail)
    print(f"wrote {readme}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
