"""The layout's rules, kept by tests: no import cycle anywhere (function-level imports
included), the kernels never import the checker, and ``import kernels`` stays light."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("reference", "kernels", "bench", "tests")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules() -> dict[str, Path]:
    return {_module_name(p): p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))}


def _imports(name: str, path: Path, modules) -> set[str]:
    """Every project module ``name`` imports, wherever the import statement is."""
    is_package = path.name == "__init__.py"
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name in modules)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            for a in node.names:
                if f"{source}.{a.name}" in modules:  # a submodule: the edge goes to it
                    found.add(f"{source}.{a.name}")
                elif source in modules:
                    found.add(source)
    found.discard(name)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = project_modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_graph_sees_function_level_imports():
    graph = import_graph()
    assert "reference.conformance.runner" in graph["reference.conformance"]  # lazy, inside __getattr__
    assert "reference.registry" in graph["kernels"]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycle():
    found = cycles(import_graph())
    assert not found, "modules that import each other in a circle: " + "; ".join(" <-> ".join(c) for c in found)


def test_kernels_never_import_the_checker():
    graph = import_graph()
    bad = {m: sorted(t for t in targets if t.startswith("reference.conformance"))
           for m, targets in graph.items() if m.split(".")[0] == "kernels"}
    assert not {m: t for m, t in bad.items() if t}, bad


def test_the_registry_and_the_vocabulary_are_leaves():
    graph = import_graph()
    for leaf in ("reference.registry", "reference.vocab"):
        assert not graph[leaf], f"{leaf} imports {sorted(graph[leaf])}"


def _fresh(code: str) -> str:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          cwd=ROOT).stdout.strip()


def test_import_kernels_is_light():
    """``import kernels`` imports neither numba, ml_dtypes, nor the checker."""
    loaded = _fresh("import sys, kernels; print(sorted(m for m in sys.modules "
                    "if m.split('.')[0] in ('numba', 'ml_dtypes', 'scipy', 'pandas', 'matplotlib') "
                    "or m.startswith('reference.conformance')))")
    assert loaded == "[]", f"import kernels loaded {loaded}"


@pytest.mark.parametrize("name", ["reference", "cpu"])
def test_running_a_backend_never_imports_the_checker(name):
    loaded = _fresh(f"import sys, numpy as np, kernels; b = kernels.BACKENDS[{name!r}]; "
                    "y, m = b.dropout_forward(np.ones(64, np.float32), 0.5, seed=1); "
                    "b.dropout_backward(y, 0.5, mask=m); "
                    "print(sorted(m for m in sys.modules "
                    "if m.startswith('reference.conformance') or m == 'ml_dtypes'))")
    assert loaded == "[]", f"a {name} call loaded {loaded}"
