"""The README's example runs as printed."""

import re
import textwrap
from pathlib import Path


def test_readme_example_runs():
    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert blocks, "the README lost its example"
    for block in blocks:
        exec(compile(textwrap.dedent(block), "README.md", "exec"), {})  # blocks inside list items are indented
