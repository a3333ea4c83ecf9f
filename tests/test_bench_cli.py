"""``dropout-bench`` says what is wrong with its input and exits 2, before running anything."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from bench import cli, env, grid, providers

ROOT = Path(__file__).resolve().parents[1]


def _refused(capsys, args) -> str:
    """stderr of a ``dropout-bench`` call that must stop with exit status 2."""
    with pytest.raises(SystemExit) as exc:
        cli.main(args)
    assert exc.value.code == 2
    return capsys.readouterr().err


@pytest.mark.parametrize("args, words", [
    (["--p", "1.5"], "argument --p: p must be in [0, 1], got 1.5"),
    (["--p", "half"], "p must be numbers in [0, 1]"),
    (["--sizes", "2**10,lots"], "size must be a positive integer such as 1024, 2**20 or 1e6, got 'lots'"),
    (["--sizes", "0"], "size must be a positive integer"),
    (["--dtypes", "float16"], "dtype must be one of ('float32', 'float64'), got 'float16'"),
    (["--masks", "bytes"], "mask format must be none, bool or bits, got 'bytes'"),
    (["--operations", "fwd"], "operation must be one of ('forward', 'backward'), got 'fwd'"),
])
def test_bad_axis_says_why(capsys, args, words):
    err = _refused(capsys, args)
    assert words in err
    assert "invalid" not in err  # argparse's "invalid parse_floats value: '1.5'"


@pytest.mark.parametrize("content, words", [
    (None, "cannot read"),
    ("not json {", "is not JSON"),
    ("[1, 2]", "is not a pytest-benchmark JSON file"),
    ('{"benchmarks": []}', "no dropout benchmarks in"),
])
def test_from_json_bad_file_says_why(capsys, tmp_path, content, words):
    path = tmp_path / "bench.json"
    if content is not None:
        path.write_text(content)
    err = _refused(capsys, ["--from-json", str(path), "--out", str(tmp_path / "out")])
    assert words in err and "Traceback" not in err


def test_refuses_points_that_cannot_fit(capsys, tmp_path, monkeypatch):
    monkeypatch.setattr(env, "available_memory", lambda cuda=False: {"host": 2**20})
    err = _refused(capsys, ["--sizes", "2**20", "--dtypes", "float64", "--backends", "cpu", "--no-peers",
                            "--passes", "1", "--budget", "0.01", "--repeats", "3", "--no-progress",
                            "--no-plots", "--out", str(tmp_path)])
    assert "cannot fit in the memory available (1.0 MiB of host)" in err
    assert "cpu-backward-bool-float64-2^20-p0.5 needs 26.0 MiB of host memory" in err
    assert not (tmp_path / "results.csv").exists()


def test_refuses_a_size_no_machine_holds(capsys, tmp_path):
    err = _refused(capsys, ["--sizes", "2**40", "--dtypes", "float64", "--backends", "cpu", "--no-peers",
                            "--out", str(tmp_path)])
    assert "cpu-forward-none-float64-2^40-p0.5 needs 16,384.0 GiB of host memory" in err


def test_footprint_counts_every_array(monkeypatch):
    n = 2**20
    cpu = providers.get("cpu")
    fwd = grid.Point("cpu", "forward", "bool", n, 0.5, "float32")
    bwd = grid.Point("cpu", "backward", "bits", n, 0.5, "float64")
    assert providers.footprint(cpu, fwd) == {"host": 4 * n + 4 * n + n}  # x, out, the returned mask
    # x, out, the y and mask of the forward that made the mask, and the mask's placed copy
    assert providers.footprint(cpu, bwd) == {"host": 3 * 8 * n + 2 * (n // 8)}
    assert providers.footprint(providers.get("reference"), fwd)["host"] > 2 * providers.footprint(cpu, fwd)["host"]
    monkeypatch.setattr(env, "cuda_simulated", lambda: False)
    gpu = providers.BackendProvider("cuda", None, "cuda")
    assert providers.footprint(gpu, fwd) == {"host": 2 * 4 * n, "cuda": 4 * n + 4 * n + n}


# --- PyTorch missing, simulated in a fresh interpreter (it is installed here) -------------

NO_TORCH = "import sys; sys.modules['torch'] = None  # import torch now fails, find_spec says None\n"


def _without_torch(code: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", NO_TORCH + textwrap.dedent(code)], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("backends", ["torch", "torch-cpu", "cpu,torch"])
def test_torch_missing_says_how_to_install(tmp_path, backends):
    proc = _without_torch(f"""
        from bench import cli
        sys.exit(cli.main(["--backends", "{backends}", "--quick", "--no-progress", "--out", "out"]))
    """, tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "PyTorch is not installed" in proc.stderr
    assert 'pip install -e ".[peers]"' in proc.stderr
    assert "pip install torch --index-url https://download.pytorch.org/whl/cpu" in proc.stderr
    assert "grid is empty" not in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists()


def test_torch_missing_skips_its_benchmarks(tmp_path):
    proc = _without_torch(f"""
        import pytest
        sys.exit(pytest.main([{str(ROOT / "tests" / "test_bench_smoke.py")!r}, "-p", "no:cacheprovider",
                              "--backend", "cpu", "-k", "torch or forward-bool-float32", "-rs"]))
    """, tmp_path)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert "SKIPPED [1]" in out and "torch-cpu: PyTorch is not installed" in out
    assert "passed" in out
