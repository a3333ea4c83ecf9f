"""The commands that write committed conformance files: the index table put in place by
``regenerate.replace_table`` and the false-alarm summary of ``false_alarms.markdown``."""

from __future__ import annotations

from reference.conformance import false_alarms, regenerate


def test_replace_table_swaps_only_the_table(tmp_path):
    f = tmp_path / "README.md"
    f.write_text("intro\n\n| implementation | level | verdict | a |\n|---|---|---|---|\n| old | x | y | z |\n\n"
                 "`pass (k)`: k checks ran and passed; old legend\n\n- after\n")
    new = "| implementation | level | verdict | b |\n|---|\n| new |\n\n`pass (k)`: k checks ran and passed; new\n"
    assert regenerate.replace_table(f, new)
    text = f.read_text()
    assert text.startswith("intro\n\n| implementation") and "| new |" in text and "old" not in text
    assert text.endswith("new\n\n- after\n")
    assert not regenerate.replace_table(tmp_path / "absent.md", new)


def test_false_alarm_summary_counts_alarms_and_errors():
    ok = {"master": 1, "hypotheses": 69, "alpha": 1.45e-6, "min_p": 0.01, "failed": [], "verdict": "pass",
          "seconds": 20.0}
    alarm = dict(ok, master=2, min_p=1e-9, failed=["keep_rate/p=0.5"], verdict="fail")
    err = {"error": "Traceback ...\nValueError: boom", "seconds": 1.0}
    md = false_alarms.markdown("reference", [ok, alarm, err])
    assert "**1 of 2 runs raised a false alarm** (1 ended in an error)" in md
    assert "`keep_rate/p=0.5`" in md and "ValueError: boom" in md


def _cannot_start():
    raise RuntimeError("the framework was imported before its interpreter flag was set")


def test_a_framework_that_cannot_start_is_a_usage_error(monkeypatch):
    import pytest

    from reference import registry
    from reference.conformance import loader

    entry = registry.Entry("cannot-start", "tests.test_conformance_tools:_cannot_start", registry.ADAPTER)
    monkeypatch.setitem(registry.BY_NAME, entry.name, entry)
    with pytest.raises(ValueError, match="cannot be loaded in this process"):
        loader.load(entry.name)
