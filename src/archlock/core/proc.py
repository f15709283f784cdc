"""The one process runner: every child archlock starts has a time limit.

`run` captures output; `stream` passes it through (builds, a user's own command); `read` hands
a binary stdout too big to hold (an image archive) to a reader as it comes. All start the
child in its own process group and kill the whole group when the limit passes, so a hung
grandchild (a container, a compiler) cannot keep a CI job waiting. A missing executable is a
`ToolMissingError` whose fix the caller names; a timeout is a result, not an exception, so the
caller can turn it into a failed check with its reason and the partial output.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import IO, Any, TypeVar

from archlock.errors import ToolMissingError
from archlock.inenv.command import kill_group

KILL_GRACE = 5.0  # seconds between SIGTERM and SIGKILL for a child past its limit
T = TypeVar("T")


@dataclass(frozen=True)
class Result:
    argv: tuple[str, ...]
    returncode: int | None  # None when the limit passed
    stdout: str
    stderr: str
    timed_out: bool
    duration: float
    timeout: float

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def tail(self, lines: int = 20) -> str:
        """The last lines of what the child printed (stderr after stdout)."""
        text = "\n".join(part for part in (self.stdout.rstrip(), self.stderr.rstrip()) if part)
        return "\n".join(text.splitlines()[-lines:])

    def why(self) -> str:
        """One line: how it ended and the last thing it said."""
        last = self.tail(1).strip()
        if self.timed_out:
            head = f"timed out after {self.timeout:g} s"
        elif self.returncode is not None and self.returncode < 0:
            head = f"killed by signal {_signal_name(-self.returncode)}"
        else:
            head = f"exited {self.returncode}"
        return f"{head}: {last}" if last else head


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return str(number)


def which(name: str) -> str | None:
    """The executable `name` resolves to (a path is returned when it exists)."""
    if os.sep in name:
        return name if os.access(name, os.X_OK) else None
    return shutil.which(name)


def _start(
    argv: Sequence[str],
    missing_fix: str | None,
    *,
    capture: bool,
    cwd: str | os.PathLike[str] | None,
    env: Mapping[str, str] | None,
    has_input: bool,
    merge_stderr: bool = False,
    pass_fds: Sequence[int] = (),
    binary: bool = False,
) -> subprocess.Popen[Any]:
    pipe = subprocess.PIPE if capture else None
    errors = subprocess.STDOUT if capture and merge_stderr else pipe
    try:
        return subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=dict(env) if env is not None else None,
            stdin=subprocess.PIPE if has_input else subprocess.DEVNULL,
            stdout=pipe,
            stderr=errors,
            text=not binary,
            errors=None if binary else "replace",
            start_new_session=True,  # its own process group: a timeout kills grandchildren too
            pass_fds=tuple(pass_fds),
        )
    except FileNotFoundError:
        raise ToolMissingError(
            f"{argv[0]}: command not found",
            fix=missing_fix or f"install {argv[0]} and put it on PATH",
        ) from None
    except PermissionError:
        raise ToolMissingError(
            f"{argv[0]}: not executable", fix=missing_fix or f"check {argv[0]}'s permissions"
        ) from None


def _kill_group(child: subprocess.Popen[Any]) -> None:
    kill_group(child, KILL_GRACE)  # the in-env scripts' killer: standard library, one rule


def _finish(
    child: subprocess.Popen[str], argv: Sequence[str], timeout: float, input: str | None
) -> Result:
    started = time.monotonic()
    try:
        out, err = child.communicate(input=input, timeout=timeout)
        timed_out = False
    except subprocess.TimeoutExpired:
        _kill_group(child)
        out, err = child.communicate()
        timed_out = True
    except BaseException:  # KeyboardInterrupt: never leave the group running behind us
        _kill_group(child)
        raise
    return Result(
        argv=tuple(argv),
        returncode=None if timed_out else child.returncode,
        stdout=out or "",
        stderr=err or "",
        timed_out=timed_out,
        duration=time.monotonic() - started,
        timeout=timeout,
    )


def run(
    argv: Sequence[str],
    *,
    timeout: float,
    cwd: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    input: str | None = None,
    missing_fix: str | None = None,
    merge_stderr: bool = False,
    pass_fds: Sequence[int] = (),
) -> Result:
    """Run `argv` to completion or to `timeout` seconds, capturing its output (`merge_stderr`:
    stderr into stdout, in the order the child wrote them; the result's stderr is empty;
    `pass_fds`: descriptors the child keeps open, such as a lock it must hold while it runs)."""
    child = _start(
        argv,
        missing_fix,
        capture=True,
        cwd=cwd,
        env=env,
        has_input=input is not None,
        merge_stderr=merge_stderr,
        pass_fds=pass_fds,
    )
    return _finish(child, argv, timeout, input)


def stream(
    argv: Sequence[str],
    *,
    timeout: float,
    cwd: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    missing_fix: str | None = None,
) -> Result:
    """Run `argv` with its output passed through to ours; the result has no captured text."""
    child = _start(argv, missing_fix, capture=False, cwd=cwd, env=env, has_input=False)
    return _finish(child, argv, timeout, None)


def read(
    argv: Sequence[str],
    reader: Callable[[IO[bytes]], T],
    *,
    timeout: float,
    missing_fix: str | None = None,
) -> tuple[Result, T | None]:
    """Run `argv`, handing its binary stdout to `reader` as it is written; `reader`'s value comes
    back with the result, or None when the child failed or timed out (a reader should answer a cut
    stream, not raise). stderr is kept whole: only for children that say little there."""
    child = _start(
        argv, missing_fix, capture=True, cwd=None, env=None, has_input=False, binary=True
    )
    fired = threading.Event()

    def expire() -> None:
        fired.set()
        _kill_group(child)

    timer = threading.Timer(timeout, expire)
    started = time.monotonic()
    timer.start()
    try:
        with child:
            out, errors = child.stdout, child.stderr
            assert out is not None and errors is not None  # both piped by _start
            value = reader(out)
            out.read()  # what the reader left: the child is never blocked on a full pipe
            err = errors.read()
    except BaseException:
        _kill_group(child)
        raise
    finally:
        timer.cancel()
    result = Result(
        argv=tuple(argv),
        returncode=None if fired.is_set() else child.returncode,
        stdout="",
        stderr=err.decode(errors="replace"),
        timed_out=fired.is_set(),
        duration=time.monotonic() - started,
        timeout=timeout,
    )
    return result, value if result.ok else None
