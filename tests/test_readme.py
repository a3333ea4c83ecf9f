"""The README's example runs as printed."""

import re
import textwrap
from pathlib import Path

import pytest


def test_readme_example_runs():
    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert blocks, "the README lost its example"
    if any("dask" in b for b in blocks):  # the README's test command installs [dask]; elsewhere skip
        pytest.importorskip("dask")
    for block in blocks:
        exec(compile(textwrap.dedent(block), "README.md", "exec"), {})  # blocks inside list items are indented


def test_ci_runs_the_readme_test_command():
    root = Path(__file__).resolve().parents[1]
    text = (root / "README.md").read_text()
    command = text[text.index("Run the tests:"):].split("```sh\n")[1].split("\n")[0]
    assert "python -m pytest" in command
    assert command in (root / ".ci" / "run").read_text().splitlines(), ".ci/run must run the README's test command"
