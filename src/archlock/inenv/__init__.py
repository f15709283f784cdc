"""Scripts that run inside an environment (probe, suite, report and their siblings): standard
library only, run as plain files.

How a script finds its siblings, the one way: a relative import (`from . import probe_system as
system`). Inside archlock that is this package. A plain-file copy's entry script (probe.py,
suite.py or report.py, run as `python -I path/to/probe.py`) first names its own folder the
package `archlock_inenv` (PEP 366: it sets `__package__`), so Python's import system loads the
siblings from that folder and nothing goes on sys.path. The report bundle registers its embedded
scripts as modules of that package, in SIBLINGS order. Whatever copies a script copies the
SIBLINGS it lists.
"""
