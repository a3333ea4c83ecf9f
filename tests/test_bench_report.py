"""CI check of the benchmark report: ``dropout-bench --quick`` writes a complete report."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from bench import cli, grid, report, traffic, underload

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
            "speedup_vs_reference_bfloat16.png", "variants_vs_size.png",
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
    # Every backend, elementwise: 3 sizes at p=0.5 plus 2 more p at 2^14, and bfloat16 at 2^14;
    # 6 (operation, mask) pairs each. Channel and in place: 2 sizes x 4 operations x 3 masks.
    studies = df[(df["study"] != "sweep") | df["n"].isin((2**8, 2**12, 2**16)) | (df["operation"] == "forward_alloc")
                 | (df["operation"] == "copy_alloc")]
    df = df.drop(studies.index)  # the per-call, as-called and under-load rows: test_quick_report_studies
    for name in ("reference", "cpu"):
        rows = df[df["backend"] == name]
        assert len(rows) == (3 + 2 + 1) * 6 + 2 * 12, name
        assert set(zip(rows["operation"], rows["mask_format"])) == {
            (op, m) for op in grid.OPERATIONS for m in ("none", "bool", "bits")}
        half = rows[rows["dtype"] == "bfloat16"]
        assert len(half) == 6 and set(half["n"]) == {2**14}
        assert set(rows.loc[rows["operation"].str.contains("_"), "n"]) == {2**14, 2**18}
    assert len(df[df["backend"] == "copy-cpu"]) == 4  # float32 at 3 sizes, bfloat16 at 2^14
    assert (df["seconds_median"] > 0).all()
    assert (df["seconds_p20"] <= df["seconds_median"]).all() and (df["seconds_median"] <= df["seconds_p80"]).all()
    np.testing.assert_allclose(df["gb_per_s"], df["bytes"] / df["seconds_median"] / 1e9, rtol=1e-4)
    # a copy disturbed on this shared machine is flagged instead (test_implausible_ceiling_is_flagged)
    plausible = ~df["ceiling_implausible"]
    copies = df[(df["operation"] == "copy") & plausible]
    np.testing.assert_allclose(copies["pct_of_copy"], 100.0)
    assert (df["pct_of_copy"].notna() == plausible).all()
    ref = df[(df["backend"] == "reference")]
    np.testing.assert_allclose(ref["speedup_vs_reference"], 1.0)
    assert df["device"].str.startswith("cpu-").all()
    assert (df["numpy"].astype(str) != "").all()
    if "torch-cpu" in backends:
        torch_rows = df[df["backend"] == "torch-cpu"]
        assert set(torch_rows["mask_format"]) <= {"none", "bool"}
        assert {"forward_channel", "backward_channel", "forward_inplace", "bfloat16"} <= set(
            torch_rows["operation"]) | set(torch_rows["dtype"])
        assert "backward_inplace" not in set(torch_rows["operation"])  # no in-place native backward
    # the bytes of every row follow the model: 2 bytes per bfloat16 element, the small channel mask
    model = [traffic.bytes_moved(r.operation, grid.mask_from_label(r.mask_format), r.n, r.dtype)
             for r in df.itertuples()]
    assert df["bytes"].tolist() == model
    ch = df[(df["operation"] == "forward_channel") & (df["mask_format"] == "bool") & (df["n"] == 2**18)]
    assert (ch["bytes"] == 8 * 2**18 + 2**18 // 1024).all()


def test_quick_report_pairs(quick_report):
    """Every dropout row's % of copy comes from side-by-side pairs, with p20 <= median <= p80;
    the pinned environment is in every row."""
    df = report.read_csv(quick_report / "results.csv")
    kernels = df[~df["operation"].isin(grid.COPIES)]
    assert (kernels["pct_method"] == "pairs").all() and (kernels["copy_pairs"] >= 3).all()
    assert (kernels["pct_of_copy_p20"] <= kernels["pct_of_copy"] + 1e-9).all()
    assert (kernels["pct_of_copy"] <= kernels["pct_of_copy_p80"] + 1e-9).all()
    assert set(kernels.loc[kernels["operation"] == "forward_alloc", "ceiling"]) == {"copy_alloc"}
    assert set(kernels.loc[kernels["operation"] == "forward", "ceiling"]) == {"copy"}
    for col in ("cpu_model", "numba_threads", "threading_layer", "loadavg_before", "loadavg_after"):
        assert df[col].notna().all(), col
    summary = (quick_report / "summary.md").read_text()
    assert "Pinned / read: CPU model" in summary and "Load average (1 min):" in summary
    assert "% of copy, side by side [p20–p80] (pairs)" in summary and "GB/s (indicative)" in summary


def test_quick_report_studies(quick_report):
    """The as-called, under-load and per-call rows and tables, and the per-call plot."""
    df = report.read_csv(quick_report / "results.csv")
    called = df[(df["operation"] == "forward_alloc") & (df["n"] == grid.QUICK_AS_CALLED_N)]
    rows = set(zip(called["backend"], called["mask_format"]))
    assert {("cpu", "none"), ("cpu", "bool")} <= rows  # and PyTorch's, where it is installed
    assert rows <= {("cpu", "none"), ("cpu", "bool"), ("torch-cpu", "none"), ("torch-cpu", "bool")}
    assert set(df.loc[df["operation"] == "forward_alloc", "n"]) == {grid.QUICK_AS_CALLED_N, *grid.PER_CALL_SIZES}
    assert len(df[df["operation"] == "copy_alloc"]) >= 1
    ul = df[df["study"] == "under-load"]
    assert set(ul["backend"]) == {"cpu", "copy-cpu"} and set(ul["n"]) == {2**14, 2**20}
    assert set(ul["threads"]) == {1, int(ul["threads"].max())} and ul["threads"].max() >= 2
    most = ul[ul["threads"] == ul["threads"].max()]
    assert most["vs_1_thread"].notna().all() and (ul["other_load"] > 0.5).all()  # ours spins
    idle = df[df["study"] == "idle-threads"]
    assert set(idle["backend"]) == {"cpu", "copy-cpu"} and set(idle["n"]) == set(underload.QUICK_IDLE_SIZES)
    assert idle.loc[idle["threads"] == idle["threads"].max(), "vs_1_thread"].notna().all()
    per_call = df[(df["study"] == "sweep") & df["n"].isin(grid.PER_CALL_SIZES) & (df["dtype"] == "float32")]
    assert {2**8, 2**10, 2**12, 2**14, 2**16} <= set(per_call["n"])
    assert set(per_call.loc[per_call["backend"] == "textbook-numpy", "n"]) == set(grid.PER_CALL_SIZES)
    summary = (quick_report / "summary.md").read_text()
    for title in ("## As called", "## Under load", "threads over 1, idle", "## Per call", "](per_call.png)"):
        assert title in summary, title
    section = summary.split("## Per call", 1)[1].split("\n## ", 1)[0]
    assert "| cpu | forward, `out=`, mask not kept |" in section and "| textbook-numpy |" in section
    assert "bandwidth from" in section
    assert (quick_report / "per_call.png").read_bytes()[:4] == b"\x89PNG"


def test_quick_report_variants_table(quick_report):
    """summary.md: elementwise vs channel vs in place at the largest size with such rows."""
    summary = (quick_report / "summary.md").read_text()
    assert "## Elementwise, channel and in place" in summary
    section = summary.split("## Elementwise, channel and in place", 1)[1].split("\n## ", 1)[0]
    assert "n = 2^18 (262,144), p = 0.5, float32" in section
    assert "| provider | direction | mask | elementwise | channel | in place |" in section
    assert "`(4, 64, 32, 32)` map" in section
    for line in ("| cpu | forward | not kept |", "| cpu | backward | stored bits |",
                 "| reference | backward | regenerated |"):
        row = next(r for r in section.splitlines() if r.startswith(line))
        assert row.count("GB/s") == 0 and row.count("—") == 0, row  # all three variants measured
    assert "Copy ceiling:" in section
    assert "A channel-dropout mask has `N * C = n / 1024` elements" in summary


def test_bytes_model():
    n = 1000
    assert traffic.bytes_moved("forward", None, n, "float32") == 8 * n
    assert traffic.bytes_moved("forward", "bool", n, "float16") == 5 * n
    assert traffic.bytes_moved("backward", "bits", n, "bfloat16") == 4 * n + 125
    assert traffic.bytes_moved("copy", None, n, "bfloat16") == 4 * n
    big = 2**20  # channel: (16, 64, 32, 32), a mask of 1024 elements
    assert traffic.bytes_moved("forward_channel", None, big, "float32") == 8 * big
    assert traffic.bytes_moved("forward_channel", "bool", big, "float32") == 8 * big + 1024
    assert traffic.bytes_moved("backward_channel", "bits", big, "float16") == 4 * big + 128
    for op in ("forward", "backward"):
        for mask in (None, "bool", "bits"):  # in place: the same bytes as out of place
            in_place = traffic.bytes_moved(f"{op}_inplace", mask, n, "float32")
            assert in_place == traffic.bytes_moved(op, mask, n, "float32")
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


def _bench(backend, kind, op, mask, t, n=2**20, **info):
    info = dict(backend=backend, kind=kind, operation=op, mask_format=mask, dtype="float32", n=n, p=0.5,
                device="cpu-test-2c", threads=2, **info,
                bytes=traffic.bytes_moved(op, grid.mask_from_label(mask), n, "float32"))
    return {"name": backend, "group": "g", "extra_info": info,
            "stats": {"median": t, "q1": 0.9 * t, "q3": 1.1 * t, "rounds": 5, "iterations": 1}}


def test_from_json_says_what_holds(tmp_path):
    """pytest-benchmark JSON: no sweep words ("measured right before"); the warm-up the benchmarks
    recorded, or that none was; one copy per size, the fastest of the groups' copies."""
    def summary(warmup):
        extra = {} if warmup is None else {"warmup": warmup}
        benches = [_bench("copy-cpu", "ceiling", "copy", "none", 2e-4, **extra),
                   _bench("copy-cpu", "ceiling", "copy", "none", 1e-4, **extra),
                   _bench("cpu", "backend", "forward", "bool", 1e-3, **extra)]
        path = tmp_path / f"bench-{warmup}.json"
        path.write_text(json.dumps({"datetime": "2026-01-01T00:00:00", "benchmarks": benches}))
        out = tmp_path / f"out-{warmup}"
        assert cli.main(["--from-json", str(path), "--out", str(out), "--no-plots"]) == 0
        df = pd.read_csv(out / "results.csv")
        assert df.loc[df["operation"] == "copy", "seconds_median"].tolist() == [1e-4]
        return (out / "summary.md").read_text()

    text = summary(warmup=2)
    assert "measured right before" not in text and "after warm-up" not in text
    assert "the fastest of the copy benchmarks (one in every comparison group) of the same size" in text
    assert "after 2 untimed warm-up calls made by the benchmark test before pytest-benchmark calibrated it" in text
    assert "no warm-up recorded" in summary(warmup=None)


def _rows(copy_seconds: dict, kernel_seconds: dict, dtype="float32"):
    """Sweep records: a copy and a cpu forward (mask not kept) per size."""
    rows = []
    for n, t in copy_seconds.items():
        rows.append(dict(backend="copy-cpu", kind="ceiling", operation="copy", mask_format="none", p=np.nan,
                         seconds_median=t, n=n))
    for n, t in kernel_seconds.items():
        rows.append(dict(backend="cpu", kind="backend", operation="forward", mask_format="none", p=0.5,
                         seconds_median=t, n=n))
    for r in rows:
        r.update(dtype=dtype, seconds_p20=0.9 * r["seconds_median"], seconds_p80=1.1 * r["seconds_median"],
                 bytes=traffic.bytes_moved(r["operation"], None, r["n"], dtype), device="cpu-test-2c",
                 threads=2, numpy="2", numba="0", numba_cuda="", torch="", timestamp="2026-01-01T00:00:00",
                 source="dropout-bench", passes=1, warmup=2)
    return rows


def test_implausible_ceiling_is_flagged(tmp_path, monkeypatch):
    """A copy stuck on an ~8 ms wall: no "% of copy" against it (was 128,799%), a CSV column, a
    note in the summary and a mark in the plots."""
    from bench import plots

    rows = _rows({2**10: 8e-3, 2**14: 3e-6, 2**18: 3e-5}, {2**10: 2e-6, 2**14: 3.3e-6, 2**18: 3.2e-5})
    # float64: no kernel at 2^10, but its copy took longer than the copy of 2^14 elements
    rows += _rows({2**10: 8e-3, 2**14: 5e-6}, {2**14: 5.5e-6}, dtype="float64")
    df = report.frame(rows)
    bad = df["ceiling_implausible"]
    assert set(zip(df.loc[bad, "dtype"], df.loc[bad, "n"])) == {("float32", 2**10), ("float64", 2**10)}
    assert df.loc[bad, "pct_of_copy"].isna().all()
    assert df.loc[~bad, "pct_of_copy"].between(50, 150).all()

    figures = []
    monkeypatch.setattr(plots.plt, "close", figures.append)  # keep the figures to look at
    report.write_report(df.assign(p=df["p"].astype(float)), tmp_path)
    csv = report.read_csv(tmp_path / "results.csv")
    assert csv["ceiling_implausible"].tolist() == bad.tolist()
    assert csv.loc[csv["ceiling_implausible"], "pct_of_copy"].isna().all()
    summary = (tmp_path / "summary.md").read_text()
    assert "Implausible ceilings" in summary
    assert "cpu forward (mask none) ran at 4,000x the copy's GB/s (8 ms per copy)" in summary
    assert "the copy took 1,600x as long as the copy of 2^14 elements" in summary
    labels = {line.get_label() for fig in figures for ax in fig.axes for line in ax.get_lines()}
    assert plots.IMPLAUSIBLE_STYLE["label"] in labels

    quick = report.frame([r for r in rows if r["n"] == 2**10 and r["dtype"] == "float32"])
    lines = report.headline_table(quick, "cpu-test-2c")
    assert any(report.NO_CEILING in line for line in lines)
    assert not any("400000%" in line.replace(",", "") for line in lines)
