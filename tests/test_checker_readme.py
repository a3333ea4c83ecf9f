"""The README's dropout-check example and its claimed verdict agree (issue 21, item 6): the
test reads the example's code (the `my_dropout.py` here-document) and the verdict claimed on
the `dropout-check my_dropout:dropout` line (`# PASS` or `# FAIL: check, check`), runs the
checker at the default size with fixed seeds, and compares."""

from __future__ import annotations

import re
import types
from pathlib import Path

from reference.conformance import runner
from reference.conformance.loader import wrap

README = Path(__file__).resolve().parents[1] / "README.md"


def _example():
    text = README.read_text()
    code = re.search(r"cat > my_dropout\.py <<'EOF'\n(.*?)\nEOF\n", text, re.S).group(1)
    claim = re.search(r"^dropout-check my_dropout:dropout\s+#\s*(PASS|FAIL)([^\n]*)$", text, re.M)
    named = claim.group(2).split("; report")[0]  # the check names, before the report path
    failed = set(re.findall(r"`?([a-z_0-9]+/[^\s`,;()]+)`?", named)) if claim.group(1) == "FAIL" else set()
    return code, claim.group(1), failed


def test_readme_example_verdict_agrees():
    code, verdict, claimed_failures = _example()
    mod = types.ModuleType("my_dropout")
    exec(compile(code, "README.md:my_dropout.py", "exec"), mod.__dict__)
    run = runner.run(wrap(mod.dropout, name="my_dropout:dropout"))
    failed = {r.name for r in run.results if r.passed is False}
    assert run.verdict.upper() == verdict, (verdict, sorted(failed))
    if claimed_failures:
        assert failed == claimed_failures, (sorted(failed), sorted(claimed_failures))
