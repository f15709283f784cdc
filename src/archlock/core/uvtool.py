"""Running uv: finding it, calling it, and turning its failures into one actionable line."""

from __future__ import annotations

import os
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from archlock.core import proc
from archlock.errors import ExternalCommandError, ResolveError, ToolMissingError

# A cold resolve of a torch project is seconds (metadata only); an index that stops answering
# must not hold a lock (and its journal) for ever.
UV_TIMEOUT = 1800.0

UNREACHABLE = re.compile(
    r"(Failed to fetch|error sending request|dns error|failed to lookup address|Connection refused"
    r"|tcp connect error|Could not connect|invalid peer certificate|timed out"
    r"|Network is unreachable|Directory not found for index|No such file or directory)",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class UvResult:
    stdout: str
    stderr: str


def uv_binary() -> str:
    """uv from PATH, else the one the `uv` package ships next to this interpreter."""
    found = shutil.which("uv")
    if found:
        return found
    try:
        from uv import find_uv_bin  # type: ignore[import-not-found]

        return str(find_uv_bin())
    except (ImportError, FileNotFoundError):
        raise ToolMissingError(
            "uv is not installed", fix=f"{sys.executable} -m pip install uv"
        ) from None


def run_uv(
    args: list[str],
    *,
    cwd: Path,
    env: dict[str, str] | None = None,
    what: str,
    keep_fds: tuple[int, ...] = (),
) -> UvResult:
    """Run `uv ARGS`; a failure raises ResolveError/ExternalCommandError with uv's own reason.
    `keep_fds` stay open in uv (a lock it must hold for as long as it runs)."""
    full_env = {**os.environ, "NO_COLOR": "1", **(env or {})}
    done = proc.run(
        [uv_binary(), *args], timeout=UV_TIMEOUT, cwd=cwd, env=full_env, pass_fds=keep_fds
    )
    if done.timed_out:
        raise ExternalCommandError(
            f"{what}: uv did not finish in {UV_TIMEOUT:.0f} s and was stopped",
            fix="check that the package indexes answer, then run it again",
        )
    if done.returncode != 0:
        raise classify_failure(done.stderr, what)
    return UvResult(done.stdout, done.stderr)


NOISE = ("Using ", "Resolved ", "warning: `VIRTUAL_ENV`")


def uv_lines(stderr: str) -> tuple[str, ...]:
    """uv's explanation as it wrote it, line by line (its indentation kept, blank lines and
    progress chatter dropped), at most 40 lines."""
    lines = [line.rstrip() for line in stderr.splitlines()]
    kept = [line for line in lines if line.strip() and not line.lstrip().startswith(NOISE)]
    return tuple(kept[:40]) or ("uv failed without a message",)


def uv_reason(stderr: str) -> str:
    """uv's explanation squeezed onto one line (where only a line fits, e.g. a stale reason)."""
    return re.sub(r"\s+", " ", " ".join(uv_lines(stderr)))[:600]


def without_hints(lines: tuple[str, ...], settings: re.Pattern[str]) -> tuple[str, ...]:
    """uv's lines less each `hint:` paragraph that names one of `settings` (ones archlock wrote,
    which the user cannot act on); a hint's paragraph runs to the next unindented line."""
    out: list[str] = []
    dropping = False
    for line in lines:
        if not line.startswith(" "):
            dropping = line.startswith("hint:") and bool(settings.search(line))
        if not dropping:
            out.append(line)
    return tuple(out)


def classify_failure(stderr: str, what: str) -> ResolveError | ExternalCommandError:
    detail = uv_lines(stderr)
    if "No solution found" in stderr or "unsatisfiable" in stderr:
        return ResolveError(f"{what}: no solution", detail=detail)
    if UNREACHABLE.search(stderr):
        return ResolveError(f"{what}: an index is unreachable", detail=detail)
    return ExternalCommandError(f"{what}: uv failed", detail=detail)
