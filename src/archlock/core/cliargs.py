"""argparse value types shared by the verbs: bad values are usage errors, before any work.

`count` (a whole number >= 0: `--tail-lines -5` is a usage error) and `seconds` (a time limit,
> 0 and finite) are written once, in the in-environment report script, which must parse its own
arguments without archlock installed; the host verbs use the same two.
"""

from __future__ import annotations

from archlock.inenv.report import count, seconds

__all__ = ["count", "seconds"]
