"""The README's pytest-benchmark workflow, command by command, at a tiny size in a tmp dir.

The commands are those of the README section "Timing and comparing runs with pytest-benchmark",
each run as a user would (with ``pytest``'s project config), plus what keeps it small: one
size (2^10), the cpu backend with its copy and peer, one kind of group.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README_COMMANDS = [
    "pytest tests/test_bench_smoke.py --benchmark-autosave",
    "pytest tests/test_bench_smoke.py --benchmark-autosave --benchmark-compare",
    "pytest-benchmark compare 0001 0002 --group-by=group --columns=median,iqr,rounds",
    "pytest tests/test_bench_smoke.py --benchmark-json=bench.json",
    "dropout-bench --from-json bench.json --out reports/mine",
]
SMALL = ["-p", "no:cacheprovider", "--backend", "cpu", "-k", "forward-bool-float32"]
FAST = ["--benchmark-max-time=0.05"]  # after the first run, which keeps pytest-benchmark's defaults
PROGRAMS = {"pytest": ["-m", "pytest"], "pytest-benchmark": ["-m", "pytest_benchmark"],
            "dropout-bench": ["-m", "bench.cli"]}


def run(command: str, cwd: Path, extra=()) -> subprocess.CompletedProcess:
    program, *args = shlex.split(command)
    args = [str(ROOT / a) if a.startswith("tests/") else a for a in args]
    env = dict(os.environ, DROPOUT_BENCH_SIZES="2**10")
    return subprocess.run([sys.executable, *PROGRAMS[program], *args, *extra], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def workflow(tmp_path_factory):
    """(tmp dir, {command: output}): the commands run in order in one tmp dir (each builds on
    the ones before); ``output`` raises when its command failed."""
    cwd = tmp_path_factory.mktemp("workflow")
    done = {}
    for k, command in enumerate(README_COMMANDS):
        extra = SMALL + (FAST if k else []) if command.startswith("pytest ") else []
        done[command] = run(command, cwd, extra)

    def output(command: str) -> str:
        proc = done[command]
        assert proc.returncode == 0, f"{command}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        return proc.stdout + proc.stderr

    return cwd, output


def _saved(cwd: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((cwd / ".benchmarks").glob("*/*.json"))]


def test_autosave_times_and_saves(workflow):
    """--benchmark-autosave alone times and saves (addopts holds --benchmark-disable)."""
    cwd, output = workflow
    output(README_COMMANDS[0])
    runs = _saved(cwd)
    assert len(runs) == 2, "each --benchmark-autosave run saves one file"
    assert all(r["benchmarks"] for r in runs)


def test_warmed_up_before_calibration(workflow):
    """Under pytest-benchmark's default options, a compile (over 0.2 s) inside the calibration
    leaves its minimum of 5 rounds of one call; warm, a 2^10 point gets thousands (about 120
    when every call hits the ~8 ms wall of a loaded machine)."""
    cwd, _ = workflow
    first = _saved(cwd)[0]
    for bench in first["benchmarks"]:
        assert bench["stats"]["rounds"] > 5, (bench["name"], bench["stats"]["rounds"])
        assert bench["extra_info"]["warmup"] >= 1


def test_groups_hold_their_copy_and_throughput(workflow):
    cwd, output = workflow
    output(README_COMMANDS[3])
    doc = json.loads((cwd / "bench.json").read_text())
    groups = {}
    for bench in doc["benchmarks"]:
        groups.setdefault(bench["group"], []).append(bench["extra_info"])
    assert groups
    for group, infos in groups.items():
        assert [i["operation"] for i in infos].count("copy") == 1, group
        assert infos[0]["operation"] == "copy", "the copy runs first in its group"
        for info in infos:
            assert info["gb_per_s"] > 0
            assert info["copy_gb_per_s"] == pytest.approx(infos[0]["gb_per_s"])
            if info["ceiling_implausible"]:
                assert info["pct_of_copy"] is None
            else:
                assert info["pct_of_copy"] == pytest.approx(100 * info["gb_per_s"] / info["copy_gb_per_s"])


def test_compare_commands_show_both_runs(workflow):
    _, output = workflow
    compared = output(README_COMMANDS[1])
    assert "Comparing against benchmarks from" in compared and "0001" in compared
    table = output(README_COMMANDS[2])
    assert "forward mask=bool float32 n=2^10 p=0.5" in table
    for name in ("copy-cpu-forward-bool", "cpu-forward-bool"):
        assert f"{name}-float32-2^10-p0.5] (0001" in table and f"{name}-float32-2^10-p0.5] (0002" in table


def test_from_json_report(workflow):
    cwd, output = workflow
    output(README_COMMANDS[4])
    out = cwd / "reports" / "mine"
    summary = (out / "summary.md").read_text()
    assert (out / "results.csv").is_file()
    assert "pytest-benchmark's rounds" in summary and "made by the benchmark test" in summary
    assert "measured right before" not in summary


def test_addopts_loads_the_enable_plugin():
    """The workflow above needs bench/pytest_enable.py in every pytest run of the project."""
    import tomllib

    addopts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]["addopts"]
    assert "-p bench.pytest_enable" in addopts
