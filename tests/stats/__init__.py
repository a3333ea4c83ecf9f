"""Statistical test battery of the dropout stream (GitHub issue 4); see docs/STATISTICS.md."""
