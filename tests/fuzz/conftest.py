"""The fuzz suite: generated inputs against every surface a user types into (issue 10).

Runs with plain `pytest` (no network, no docker). At the end it prints how many inputs each
surface was given, and writes them as JSON to $ARCHLOCK_FUZZ_COUNTS when that is set.
"""

from __future__ import annotations

import json
import os

import pytest
from fuzz_support import COUNTS, TALLY
from hypothesis import HealthCheck, settings

settings.register_profile(
    "archlock-fuzz",
    deadline=None,  # two shared cores: a slow example is not a bug
    database=None,  # nothing written into the checkout
    print_blob=True,  # a failure prints the line that reproduces it
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    # CI replays the same inputs every run (a red CI means a change broke something); local
    # runs draw new ones, which is how new bugs are found
    derandomize=bool(os.environ.get("CI")),
)
settings.load_profile("archlock-fuzz")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not COUNTS:
        return
    total = sum(COUNTS.values())
    terminalreporter.section(f"fuzz: {total} generated inputs")
    for surface, count in sorted(COUNTS.items()):
        terminalreporter.write_line(f"  {surface:<14} {count}")
    for kind, count in sorted(TALLY.items()):
        terminalreporter.write_line(f"  broke: {kind}: {count}")
    target = os.environ.get("ARCHLOCK_FUZZ_COUNTS")
    if target:
        with open(target, "w", encoding="utf-8") as handle:
            json.dump(
                {"total": total, "inputs": dict(sorted(COUNTS.items())), "broke": dict(TALLY)},
                handle,
                indent=2,
            )
