"""``dropout-bench`` says what is wrong with its input and exits 2, before running anything."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from bench import cli, env, grid, inputs, providers
from reference import vocab

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
    (["--dtypes", "float8"], "dtype must be one of ('float32', 'float64', 'float16', 'bfloat16'), got 'float8'"),
    (["--masks", "bytes"], "mask format must be none, bool or bits, got 'bytes'"),
    (["--operations", "fwd"], "operation must be one of ('forward', 'backward', 'forward_channel', "
                              "'backward_channel', 'forward_inplace', 'backward_inplace'), got 'fwd'"),
    (["--impl", " , "], "no implementation given"),
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
    monkeypatch.setattr(vocab, "cuda_simulated", lambda: False)
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
    # the form of dropout-check's message for a missing optional package
    assert "needs a package that is not installed (pip install -e \".[peers]\"" in proc.stderr
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
    assert "SKIPPED [1]" in out and "'torch-cpu' needs a package that is not installed" in out
    assert "passed" in out


# --- 16-bit dtypes, channel and in-place rows, --impl ----------------------------------------

def test_new_axes_parse():
    assert grid.parse_dtypes("float16,bfloat16") == ("float16", "bfloat16")
    assert grid.parse_operations("forward_channel,backward_inplace") == ("forward_channel", "backward_inplace")
    assert grid.parse_impls("textbook-numpy, quant8,textbook-numpy") == ("textbook-numpy", "quant8")


def test_channel_map_shape():
    assert grid.channel_map_shape(2**24) == (256, 64, 32, 32)
    assert grid.channel_map_shape(2**14) == (1, 16, 32, 32)
    assert grid.channel_map_shape(2**10) == (1, 4, 16, 16)
    assert grid.channel_map_shape(2**8) == (1, 4, 8, 8)  # the CUDA simulator's size
    assert grid.channel_map_shape(10**6) is None and grid.channel_map_shape(6) is None
    assert grid.mask_elements("backward_channel", 2**24) == 256 * 64
    assert grid.mask_elements("forward_inplace", 2**24) == 2**24


def test_default_grids_hold_the_new_rows():
    """The full CPU sweep: float16 and bfloat16 at three sizes, channel and in-place rows up to the
    headline size 2^24; --quick: bfloat16 at one size and the variants at two."""
    names = {n: providers.get(n) for n in ("reference", "cpu", "copy-cpu")}
    pts = grid.points(grid.default_grids(names, gpu=False), names)
    half = {(pt.dtype, pt.n) for pt in pts if pt.provider == "cpu" and pt.dtype in vocab.HALF_DTYPES}
    assert {d for d, _ in half} == {"float16", "bfloat16"} and len({n for _, n in half}) >= 2
    variants = {(pt.operation, pt.n) for pt in pts if pt.provider == "cpu" and pt.operation not in grid.ELEMENTWISE}
    assert {op for op, _ in variants} == set(grid.CHANNEL + grid.INPLACE)
    assert max(n for _, n in variants) == 2**24
    assert {pt.dtype for pt in pts if pt.operation == "copy"} == set(vocab.DTYPES)  # a ceiling per dtype
    quick = grid.points(grid.quick_grids(names), names)
    assert {pt.dtype for pt in quick} == {"float32", "bfloat16"}
    assert {pt.operation for pt in quick} == set(grid.OPERATIONS) | {"copy"}


def test_channel_points_skip_sizes_without_a_shape():
    names = {n: providers.get(n) for n in ("cpu", "copy-cpu")}
    g = grid.Grid("g", tuple(names), (10**6, 2**20), operations=grid.CHANNEL, mask_formats=(None,))
    assert {(pt.operation, pt.n) for pt in grid.points([g], names) if pt.operation != "copy"} == {
        ("forward_channel", 2**20), ("backward_channel", 2**20)}


def test_unknown_impl_exits_2(capsys, tmp_path):
    err = _refused(capsys, ["--impl", "no-such-impl", "--quick", "--out", str(tmp_path)])
    assert "--impl no-such-impl: unknown implementation 'no-such-impl'" in err
    assert "textbook-numpy" in err and "Traceback" not in err
    err = _refused(capsys, ["--impl", "nosuchmodule_xyz:f", "--quick", "--out", str(tmp_path)])
    assert "cannot import 'nosuchmodule_xyz'" in err
    assert not (tmp_path / "results.csv").exists()


def test_impl_provider_capabilities():
    tb = providers.impl_provider("textbook-numpy")  # forward only, float32/float64, no mask, no offset
    assert tb.name == "textbook-numpy" and tb.kind == "impl" and tb.device == "cpu"
    assert tb.supports("forward", None) and not tb.supports("forward", "bool")
    assert not tb.supports("backward", None) and not tb.supports("forward_channel", None)
    assert tb.supports_dtype("float64") and not tb.supports_dtype("bfloat16")
    assert providers.impl_provider("cpu").name == "impl:cpu"  # the name of a provider already


def test_impl_quick_run(tmp_path):
    """--impl textbook-numpy --quick at a tiny size: its forward rows, next to the named backend and
    the copy; the points it cannot do are not rows and not errors."""
    out = tmp_path / "r"
    rc = cli.main(["--impl", "textbook-numpy", "--impl", "quant8", "--quick", "--sizes", "2**10", "--backends", "cpu",
                   "--no-progress", "--no-plots", "--repeats", "3", "--budget", "0.01", "--out", str(out)])
    assert rc == 0
    from bench import report

    df = report.read_csv(out / "results.csv")
    tb = df[df["backend"] == "textbook-numpy"]
    assert set(zip(tb["operation"], tb["mask_format"])) == {("forward", "none")}
    assert set(tb["dtype"]) == {"float32"} and set(tb["kind"]) == {"impl"}  # no bfloat16: not supported
    q8 = df[df["backend"] == "quant8"]
    assert {"forward", "backward"} <= set(q8["operation"]) and not q8["operation"].str.contains("_").any()
    assert {"cpu", "copy-cpu"} <= set(df["backend"])
    assert (df["gb_per_s"] > 0).all()
    assert "textbook-numpy" in (out / "summary.md").read_text()


@pytest.mark.parametrize("operation, mask", [("forward_inplace", "bits"), ("backward_inplace", None)])
def test_inplace_points_restore_their_input(operation, mask):
    """An in-place point overwrites its input: the timing loop restores it (untimed) before every
    call, so every timed call sees the data of the other rows, not zeros left by earlier calls."""
    from bench import timing
    from kernels import BACKENDS

    fn = providers.get("cpu").prepare(operation, mask, 2**10, 0.5, "bfloat16")
    x0 = inputs.host_input(2**10, "bfloat16").copy()
    direction = operation.split("_")[0]
    once = (BACKENDS["cpu"].dropout_forward(x0, 0.5, seed=providers.SEED, mask_format=mask)[0] if direction == "forward"
            else BACKENDS["cpu"].dropout_backward(x0, 0.5, seed=providers.SEED))
    t = timing.measure(fn, repeats=3, budget_s=0.01)
    assert t.repeats == 3
    y = fn() if direction == "backward" else fn()[0]  # one more call without a restore: twice applied
    fn.setup()
    y = fn() if direction == "backward" else fn()[0]
    assert y.view("uint16").tolist() == once.view("uint16").tolist()
    assert (inputs.host_input(2**10, "bfloat16").view("uint16") == x0.view("uint16")).all()  # pristine kept


def test_impl_with_noise_shape_and_inplace_gets_those_rows():
    """An implementation declaring noise_shape and in place (capabilities) runs the channel and
    in-place points too, with the same inputs as the backends; without them it is skipped there."""
    from dataclasses import dataclass

    from bench import timing
    from kernels import BACKENDS

    cpu = BACKENDS["cpu"]

    @dataclass(frozen=True)
    class Caps:
        noise_shape: object = "channel"
        inplace: bool = True
        dtypes: tuple = ("float32",)

        def has(self, need):
            kind, _, arg = need.partition(":")
            return arg in self.dtypes if kind == "dtype" else True

    class Impl:
        capabilities = Caps()

        def forward(self, x, p, *, seed, mask_format=None, **kw):
            return cpu.dropout_forward(x, p, seed=seed, mask_format=mask_format, **kw)

        def backward(self, g, p, *, mask=None, seed=None, **kw):
            return cpu.dropout_backward(g, p, mask=mask, seed=seed, **kw)

    prov = providers.ImplProvider("stub", Impl())
    assert prov.supports("forward_channel", "bits") and prov.supports("backward_inplace", None)
    assert not providers.ImplProvider("stub", type("I", (), {"capabilities": Caps(False, False)})()).supports(
        "forward_channel", None)
    fn = prov.prepare("backward_channel", "bool", 2**12, 0.5, "float32")
    x = inputs.host_input(2**12, "float32").reshape(grid.channel_map_shape(2**12))
    want = cpu.dropout_backward(x, 0.5, seed=providers.SEED, noise_shape=(1, 4, 1, 1))
    assert (fn() == want).all()
    fn = prov.prepare("forward_inplace", None, 2**10, 0.5, "float32")
    assert timing.measure(fn, repeats=2, budget_s=0.01).repeats == 2
    fn.setup()
    assert (fn()[0] == cpu.dropout_forward(inputs.host_input(2**10, "float32"), 0.5, seed=providers.SEED)[0]).all()
