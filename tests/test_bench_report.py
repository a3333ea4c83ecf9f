"""CI check of the benchmark report: ``dropout-bench --quick`` writes a complete report."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from bench import cli, grid, report, traffic

EXPECTED_COLUMNS = [
    "backend", "operation", "mask_format", "dtype", "n", "p", "seconds_median", "seconds_p20",
    "seconds_p80", "elements_per_s", "bytes", "gb_per_s", "pct_of_copy", "device", "numpy", "numba",
    "numba_cuda", "torch", "threads", "timestamp",
]


@pytest.fixture(scope="module")
def quick_report(tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    rc = cli.main(["--quick", "--out", str(out), "--no-progress", "--backends", "reference,cpu"])
    assert rc == 0
    return out


def test_quick_report_files(quick_report):
    out = quick_report
    assert (out / "results.csv").is_file()
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert {"throughput_vs_size_float32.png", "speedup_vs_reference_float32.png",
            "throughput_vs_p.png", "forward_vs_backward.png"} <= set(pngs)
    for name in pngs:
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    summary = (out / "summary.md").read_text()
    assert "| provider |" in summary and "% of copy" in summary
    for name in pngs:
        assert f"]({name})" in summary


def test_quick_report_rows(quick_report):
    df = report.read_csv(quick_report / "results.csv")
    assert list(df.columns[: len(EXPECTED_COLUMNS)]) == EXPECTED_COLUMNS
    backends = set(df["backend"])
    assert {"reference", "cpu", "copy-cpu"} <= backends
    # Every backend: 3 sizes at p=0.5 plus 2 more p at 2^14; 6 (operation, mask) pairs each.
    for name in ("reference", "cpu"):
        rows = df[df["backend"] == name]
        assert len(rows) == (3 + 2) * 6, name
        assert set(zip(rows["operation"], rows["mask_format"])) == {
            (op, m) for op in ("forward", "backward") for m in ("none", "bool", "bits")}
    assert len(df[df["backend"] == "copy-cpu"]) == 3
    assert (df["seconds_median"] > 0).all()
    assert (df["seconds_p20"] <= df["seconds_median"]).all() and (df["seconds_median"] <= df["seconds_p80"]).all()
    np.testing.assert_allclose(df["gb_per_s"], df["bytes"] / df["seconds_median"] / 1e9, rtol=1e-4)
    copies = df[df["operation"] == "copy"]
    np.testing.assert_allclose(copies["pct_of_copy"], 100.0)
    assert df["pct_of_copy"].notna().all()
    ref = df[(df["backend"] == "reference")]
    np.testing.assert_allclose(ref["speedup_vs_reference"], 1.0)
    assert df["device"].str.startswith("cpu-").all()
    assert (df["numpy"].astype(str) != "").all()
    if "torch-cpu" in backends:
        assert set(df.loc[df["backend"] == "torch-cpu", "mask_format"]) <= {"none", "bool"}


def test_bytes_model():
    n = 1000
    assert traffic.bytes_moved("forward", None, n, "float32") == 8 * n
    assert traffic.bytes_moved("forward", "bool", n, "float32") == 9 * n
    assert traffic.bytes_moved("forward", "bits", n, "float64") == 16 * n + 125
    assert traffic.bytes_moved("backward", None, n, "float64") == 16 * n
    assert traffic.bytes_moved("backward", "bits", 1001, "float32") == 8 * 1001 + 126
    assert traffic.bytes_moved("copy", None, n, "float32") == 8 * n


def test_parse_sizes():
    assert grid.parse_sizes("2**10,2^12, 4096,1e3") == (1024, 4096, 1000)
    assert grid.parse_sizes("2**10..2**13") == (1024, 2048, 4096, 8192)
    with pytest.raises(ValueError):
        grid.parse_sizes("")


def test_from_json(tmp_path):
    """A pytest-benchmark JSON converts into the same report."""
    base = {"dtype": "float32", "n": 2**20, "p": 0.5, "device": "cpu-test-2c", "numpy": "2", "numba": "0",
            "numba_cuda": "0", "torch": "", "threads": 2}
    benches = []
    for backend, kind, op, mask, t in [
        ("copy-cpu", "ceiling", "copy", "none", 1e-4),
        ("reference", "backend", "forward", "bool", 1e-2),
        ("cpu", "backend", "forward", "bool", 1e-3),
    ]:
        info = dict(base, backend=backend, kind=kind, operation=op, mask_format=mask,
                    bytes=traffic.bytes_moved(op, grid.mask_from_label(mask), 2**20, "float32"))
        benches.append({"name": backend, "group": "g", "extra_info": info,
                        "stats": {"median": t, "q1": 0.9 * t, "q3": 1.1 * t, "rounds": 5, "iterations": 1}})
    benches.append({"name": "foreign", "extra_info": {}, "stats": {"median": 1.0}})
    path = tmp_path / "bench.json"
    path.write_text(json.dumps({"datetime": "2026-01-01T00:00:00", "benchmarks": benches}))
    out = tmp_path / "out"
    assert cli.main(["--from-json", str(path), "--out", str(out)]) == 0
    df = pd.read_csv(out / "results.csv")
    assert len(df) == 3
    cpu = df[df["backend"] == "cpu"].iloc[0]
    assert cpu["speedup_vs_reference"] == pytest.approx(10.0)
    assert cpu["pct_of_copy"] == pytest.approx(100 * (9 / 8) * 0.1)
    assert (out / "summary.md").is_file()
