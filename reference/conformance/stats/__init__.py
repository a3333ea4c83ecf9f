"""The statistical battery of dropout implementations (installed library code; see
docs/STATISTICS.md). ``battery`` lists the probes, ``budget`` the plan and the false-alarm
budget, ``sampling`` the samples and the :class:`~.sampling.Probe`, ``power`` the detectable
effects. The broken implementations it is shown to catch are the checker's mutants
(reference/conformance/mutants.py). The battery sits below the checks: nothing here imports
the runner, the deterministic checks, the report or the mutants."""
