"""Scripts that run inside an environment (probe, suite, report and their siblings): standard
library only, run as plain files."""
