"""Scripts that run inside an environment (probe, suite, report): standard library only, run
as plain files."""
