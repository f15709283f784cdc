"""One exception family. Only `archlock.cli.main` turns these into exit codes.

Every message is one line a user can act on: what happened, where (file and key), and the fix.
A tool's own explanation (uv's resolver reasons) may follow it as `detail`, one line each.
"""

from __future__ import annotations

import sys
from collections.abc import Callable


class ArchlockError(Exception):
    """Base class. `exit_code` is what the CLI exits with."""

    exit_code = 1

    def __init__(
        self, message: str, *, fix: str | None = None, detail: tuple[str, ...] = ()
    ) -> None:
        self.message = message
        self.fix = fix
        # what a tool said, line by line (uv's reasons), shown indented under the one line
        self.detail = detail
        super().__init__(self.line())

    def line(self) -> str:
        return f"{self.message} (fix: {self.fix})" if self.fix else self.message


class ConfigError(ArchlockError):
    """A user-written input (env spec, pyproject setting, report file, command line) is wrong."""

    exit_code = 2


class ToolMissingError(ArchlockError):
    """A required external tool (uv, docker, buildx) is not available."""

    exit_code = 3


class ResolveError(ArchlockError):
    """uv could not resolve or reach an index."""

    exit_code = 4


class DriftError(ArchlockError):
    """A generated file is stale (`--check` modes)."""

    exit_code = 5


class CheckFailed(ArchlockError):
    """A verification, audit or scan found problems (the report says which)."""

    exit_code = 6


class ExternalCommandError(ArchlockError):
    """A subprocess we depend on failed unexpectedly."""

    exit_code = 7


def exit_code_of(verb: str, call: Callable[[], int | None]) -> int:
    """Run a verb; an ArchlockError becomes its one line on stderr and its exit code."""
    try:
        return int(call() or 0)
    except ArchlockError as exc:
        print(f"archlock {verb}: error: {exc.line()}", file=sys.stderr)
        for line in exc.detail:
            print(f"  {line}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"archlock {verb}: interrupted; no file was half-written", file=sys.stderr)
        return 130
