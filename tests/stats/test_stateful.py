"""Stateful mode: a correct stateful dropout passes every check; each stateful bug is caught by
the check written for it (reference/conformance/stateful_mutants.py), at the full plan's ALPHA."""

from __future__ import annotations

import numpy as np
import pytest

from reference.conformance import runner
from reference.conformance.loader import wrap
from reference.conformance.protocol import fold_seed, from_stateful
from reference.conformance.stateful_mutants import CATCHERS, MUTANTS, SCAFFOLD, Scaffold


def test_correct_stateful_passes(stat_seeds):
    run = runner.run(SCAFFOLD, stat_seed=stat_seeds, quick=True)
    ran = {r.name for r in run.results if r.passed is not None}
    assert run.verdict == "pass", [(r.name, r.detail) for r in run.results if r.passed is False]
    assert {"stateful/successive_differ", "stateful/reseed_reproduces", "stateful/p0_keeps_generator",
            "stateful/eval_keeps_generator", "stateful/threads_agree", "successive/calls1-2",
            "semantic/noise_shape", "noise_keep_rate/channel/p=0.1"} <= ran  # f(x, p, noise_shape=...) probed


@pytest.mark.parametrize("name", sorted(MUTANTS))
def test_stateful_mutant_is_caught(name, stat_seeds):
    impl = MUTANTS[name]
    pl = runner.plan(impl)
    by_name = {c.name: c for c in pl.checks}
    results = [runner.execute(by_name[c], pl, stat_seeds) for c in CATCHERS[name]]
    assert any(r.passed is False for r in results), [(r.name, r.status, r.p_value, r.detail) for r in results]
    failed = next(r for r in results if r.passed is False)
    assert failed.observed or failed.detail  # said in words, not only a p-value


def test_a_callable_of_x_and_p_is_checked_as_stateful():
    f = Scaffold()
    impl = wrap(f)  # no reseed given: found as f.reseed
    assert impl.capabilities.stateful and impl.capabilities.reproducible and impl.capabilities.threads

    def bare(x, p):  # no reseed: seeds are ignored, reproducibility checks are "not supported"
        return f(x, p)

    impl = wrap(bare)
    assert impl.capabilities.stateful and not impl.capabilities.reproducible
    run = runner.run(impl, quick=True, names=["semantic/same_seed_repeats", "stateful/*"])
    status = {r.name: r.status for r in run.results}
    assert status["semantic/same_seed_repeats"] == "not supported"
    assert status["stateful/reseed_reproduces"] == "not supported"
    assert status["stateful/successive_differ"] == "pass"


def test_documented_behaviour_is_a_note_not_a_failure():
    from reference.conformance.stateful_mutants import AdvancesAtP0

    f = AdvancesAtP0()
    impl = from_stateful(f, "documented", reseed=f.reseed, notes=("stateful/p0_keeps_generator",))
    run = runner.run(impl, quick=True, names=["stateful/p0_keeps_generator"])
    (r,) = run.results
    assert r.status == "note" and r.passed is True and "moved the generator" in r.detail
    assert run.verdict == "pass"


def test_seed_bits_folds_every_seed():
    seen = []

    def f(x, p):
        return x.copy()

    def reseed(s):
        seen.append(s)

    impl = from_stateful(f, "s32", reseed=reseed, seed_bits=32)
    seen.clear()  # the capability probes' own calls
    for s in (5, 5 + 2**32, 5 ^ 2**63, 2**63 - 1):
        impl.forward(np.ones(4, np.float32), 0.5, seed=s)
    assert all(0 <= s < 2**32 for s in seen) and len(set(seen)) == 4
    assert fold_seed(123, 64) == 123 and fold_seed(123, 32) == fold_seed(123, 32)
    with pytest.raises(ValueError, match="seed_bits"):
        from_stateful(f, seed_bits=0)


def test_cli_note_and_seed_bits(tmp_path, capsys):
    from reference.conformance import cli

    spec = "reference.conformance.stateful_mutants:advances_at_p0"
    args = [spec, "--quick", "--only", "stateful/*", "--out", str(tmp_path)]
    assert cli.main(args) == 1  # the bug is a failure ...
    assert cli.main([*args, "--note", "stateful/p0_keeps_generator", "--seed-bits", "32"]) == 0  # ... or a note
    report = (tmp_path / "report.md").read_text()
    assert "| `stateful/p0_keeps_generator` | note |" in report and "32-bit" in report
    assert cli.main(args) == 1  # the options changed a copy, not the shared implementation
    with pytest.raises(SystemExit) as e:
        cli.main([*args, "--note", "no/such/check"])
    assert e.value.code == 2


def test_stateful_checks_reseed_with_folded_seeds():
    class Strict32(Scaffold):  # as Keras's SeedGenerator: a seed of 2**32 or more is an error
        def reseed(self, seed):
            if not 0 <= seed < 2**32:
                raise OverflowError(f"{seed} out of bounds for uint32")
            super().reseed(seed)

    f = Strict32()
    impl = from_stateful(f, "strict32", reseed=f.reseed, seed_bits=32)
    run = runner.run(impl, quick=True, names=["stateful/*", "successive/*", "semantic/same_seed_repeats"])
    assert run.verdict == "pass" and not [r for r in run.results if r.status == "error"], \
        [(r.name, r.detail) for r in run.results if r.passed is False]
