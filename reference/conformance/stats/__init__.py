"""The statistical battery of dropout implementations (installed library code; see
docs/STATISTICS.md). ``battery`` lists the probes, ``budget`` the plan and the false-alarm
budget, ``mutants`` the broken kernels it is shown to catch, ``power`` the detectable effects."""
