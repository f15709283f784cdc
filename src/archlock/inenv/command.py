"""The failing command of a report: run it with a time limit, pass its output through, keep
the last lines. Standard library only, Python >= 3.8 (it runs inside the env being reported;
`archlock repro` reruns a report's command through it too, so both record it alike).
"""

from __future__ import annotations

import collections
import contextlib
import os
import signal
import subprocess
import sys
import threading
import time

MAX_LINE = 400  # characters kept of each line


def run_command(
    argv: list[str],
    cwd: str,
    timeout: float | None,
    tail_lines: int,
    echo=None,
    env: dict | None = None,
) -> dict:
    """Run `argv`, pass its output through, keep the last `tail_lines` lines (stdout + stderr)."""
    echo = echo if echo is not None else sys.stderr
    started = time.monotonic()
    try:
        # its own process group, so the limit (or our Ctrl-C) stops what it started too
        proc = subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    except OSError as exc:
        code = 127 if isinstance(exc, FileNotFoundError) else 126
        return command_record(
            code,
            None,
            False,
            started,
            ["report: cannot run %s: %s" % (argv[0], exc)],
            1,
            tail_lines,
        )
    fired = threading.Event()

    def expire() -> None:
        fired.set()
        kill_group(proc)

    timer = threading.Timer(timeout, expire) if timeout else None
    if timer:
        timer.start()
    tail = collections.deque(maxlen=tail_lines)  # type: collections.deque[str]
    total = 0
    try:
        with proc:
            for raw in proc.stdout or ():
                line = raw.decode("utf-8", "replace").rstrip("\r\n")
                echo.write(line + "\n")
                echo.flush()
                tail.append(line.split("\r")[-1][:MAX_LINE])
                total += 1
    except BaseException:  # Ctrl-C: the command's group goes with us
        kill_group(proc)
        raise
    code = proc.wait()
    if timer:
        timer.cancel()
    return command_record(
        128 - code if code < 0 else code,
        signal_name(code),
        fired.is_set(),
        started,
        list(tail),
        total,
        tail_lines,
    )


def signal_name(code: int) -> str | None:
    if code >= 0:
        return None
    try:
        return signal.Signals(-code).name
    except ValueError:
        return "signal %d" % -code


def kill_group(proc, grace: float = 0.0) -> None:
    """THE process-group killer (archlock.core.proc uses it too): stop the group `proc` leads.
    With a grace, SIGTERM first and up to `grace` seconds for the leader to go; then SIGKILL
    to what is left of the group (a grandchild that ignored SIGTERM too). A group that is gone
    already is no error."""
    if grace:
        with contextlib.suppress(OSError):
            os.killpg(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=grace)
    with contextlib.suppress(OSError):
        os.killpg(proc.pid, signal.SIGKILL)


def command_record(
    code: int,
    signal_name: str | None,
    timed_out: bool,
    started: float,
    tail: list[str],
    total: int,
    tail_lines: int,
) -> dict:
    return {
        "exit_code": code,
        "signal": signal_name,
        "timed_out": timed_out,
        "duration_s": round(time.monotonic() - started, 2),
        "output_tail": tail,
        "output_lines": total,
        "tail_lines": tail_lines,
    }
