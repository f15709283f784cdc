"""Running uv: finding it, calling it, and turning its failures into one actionable line."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from archlock.errors import ExternalCommandError, ResolveError, ToolMissingError

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
    proc = subprocess.run(
        [uv_binary(), *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        check=False,
        pass_fds=keep_fds,
    )
    if proc.returncode != 0:
        raise classify_failure(proc.stderr, what)
    return UvResult(proc.stdout, proc.stderr)


def uv_reason(stderr: str) -> str:
    """uv's own explanation, squeezed onto one line."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    keep = [
        line
        for line in lines
        if not line.startswith(("Using ", "Resolved ", "warning: `VIRTUAL_ENV`"))
    ]
    text = " ".join(keep) or "uv failed without a message"
    return re.sub(r"\s+", " ", text)[:600]


def classify_failure(stderr: str, what: str) -> ResolveError | ExternalCommandError:
    reason = uv_reason(stderr)
    if "No solution found" in stderr or "unsatisfiable" in stderr:
        return ResolveError(f"{what}: no solution: {reason}")
    if UNREACHABLE.search(stderr):
        return ResolveError(f"{what}: an index is unreachable: {reason}")
    return ExternalCommandError(f"{what}: uv failed: {reason}")
