"""The one process runner, with real children: time limits kill the whole group."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from archlock.core import proc
from archlock.errors import ToolMissingError

pytestmark = pytest.mark.integration


def test_a_hung_child_and_its_grandchild_are_killed_at_the_limit(tmp_path) -> None:
    pidfile = tmp_path / "grandchild.pid"
    started = time.monotonic()
    result = proc.run(["sh", "-c", f"echo partial; sleep 60 & echo $! > {pidfile}; wait"], timeout=1)
    assert time.monotonic() - started < 10
    assert result.timed_out and result.returncode is None and not result.ok
    assert result.stdout.strip() == "partial"
    assert result.why() == "timed out after 1 s: partial"
    grandchild = int(pidfile.read_text())
    time.sleep(0.2)
    assert _dead(grandchild)


def _dead(pid: int) -> bool:
    """Gone, or a zombie waiting for whoever adopted it to reap it."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


def test_exit_status_signal_and_tail() -> None:
    result = proc.run(["sh", "-c", "echo out; echo err >&2; exit 3"], timeout=10)
    assert (result.returncode, result.tail(), result.why()) == (3, "out\nerr", "exited 3: err")
    assert proc.run(["sh", "-c", "kill -SEGV $$"], timeout=10).why() == "killed by signal SIGSEGV"
    assert proc.run(["cat"], timeout=10, input="fed").stdout == "fed"


def test_a_missing_executable_is_one_line_with_the_callers_fix() -> None:
    with pytest.raises(ToolMissingError, match=r"no-such-tool-x: command not found \(fix: apt-get install x\)"):
        proc.run(["no-such-tool-x"], timeout=5, missing_fix="apt-get install x")
