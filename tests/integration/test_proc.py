"""The one process runner, with real children: time limits kill the whole group."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time

import pytest
from endtoend import gone

from archlock.core import proc
from archlock.errors import ToolMissingError

pytestmark = pytest.mark.integration


def test_a_hung_child_and_its_grandchild_are_killed_at_the_limit(tmp_path) -> None:
    pidfile = tmp_path / "grandchild.pid"
    started = time.monotonic()
    result = proc.run(
        ["sh", "-c", f"echo partial; sleep 60 & echo $! > {pidfile}; wait"], timeout=1
    )
    assert time.monotonic() - started < 10
    assert result.timed_out and result.returncode is None and not result.ok
    assert result.stdout.strip() == "partial"
    assert result.why() == "timed out after 1 s: partial"
    grandchild = int(pidfile.read_text())
    assert gone(grandchild)


def test_a_grandchild_that_ignores_sigterm_goes_too_when_the_leader_obeys(tmp_path) -> None:
    """The leader exits at SIGTERM; its grandchild ignores it and holds the output pipe. The
    group killer sends SIGKILL to what is left, so the run ends and nothing stays behind."""
    pidfile = tmp_path / "stubborn.pid"
    script = (
        f"sh -c 'trap \"\" TERM; echo $$ > {pidfile}; while :; do sleep 1; done' & "
        "trap 'exit 0' TERM; while :; do sleep 1; done"
    )
    results: list[proc.Result] = []
    run = threading.Thread(
        target=lambda: results.append(proc.run(["sh", "-c", script], timeout=1)), daemon=True
    )
    run.start()
    run.join(proc.KILL_GRACE + 20)  # a regression fails here rather than hanging the suite
    stubborn = int(pidfile.read_text())
    try:
        assert results, "the run never ended: the grandchild kept its output pipe open"
        assert results[0].timed_out
        assert gone(stubborn)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(stubborn, signal.SIGKILL)


def test_exit_status_signal_and_tail() -> None:
    result = proc.run(["sh", "-c", "echo out; echo err >&2; exit 3"], timeout=10)
    assert (result.returncode, result.tail(), result.why()) == (3, "out\nerr", "exited 3: err")
    assert proc.run(["sh", "-c", "kill -SEGV $$"], timeout=10).why() == "killed by signal SIGSEGV"
    assert proc.run(["cat"], timeout=10, input="fed").stdout == "fed"


def test_a_missing_executable_is_one_line_with_the_callers_fix() -> None:
    with pytest.raises(
        ToolMissingError, match=r"no-such-tool-x: command not found \(fix: apt-get install x\)"
    ):
        proc.run(["no-such-tool-x"], timeout=5, missing_fix="apt-get install x")
