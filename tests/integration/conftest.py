"""Fixtures the integration tests share (plain helpers are in endtoend.py)."""

from __future__ import annotations

import os

import pytest
from endtoend import CORPUS_TIMES, local_infra


@pytest.fixture(scope="session")
def infra() -> dict[str, str]:
    """The engine, buildx, QEMU, local bases, registry and uv image (scripts/local-infra.sh)."""
    if os.geteuid() != 0:
        pytest.skip(
            "host-lacks: root, which scripts/local-infra.sh needs (packages, dockerd, binfmt)"
        )
    return local_infra()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    times = terminalreporter.config.stash.get(CORPUS_TIMES, None)
    if times:
        parts = ", ".join(f"{name} {seconds:.0f} s" for name, seconds in times.items())
        terminalreporter.write_line(f"corpus wall time per project: {parts}")
