"""The only place setup-mac asks the machine anything.

`MacSystem` names every question; `HostSystem` answers them for real. Unit tests answer them
from recorded files instead, so the macOS logic runs (and is tested) on any machine.
"""

from __future__ import annotations

import glob
import os
import platform
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from archlock.inenv import probe

HEADER_BYTES = 4096  # a fat header with up to 20 slices fits easily


@dataclass(frozen=True)
class Completed:
    """A finished command: exit status and captured output."""

    returncode: int
    stdout: str = ""
    stderr: str = ""


class MacSystem(Protocol):
    def os_name(self) -> str:
        """`platform.system()`: "Darwin", "Linux", ..."""

    def machine(self) -> str:
        """`platform.machine()` of this process (x86_64 under Rosetta)."""

    def sysctl_int(self, name: str) -> int | None:
        """An integer sysctl (hw.optional.arm64, sysctl.proc_translated); None if absent."""

    def sysctl_str(self, name: str) -> str | None:
        """A string sysctl (kern.osproductversion); None if absent."""

    def environ(self) -> Mapping[str, str]:
        """This process's environment variables."""

    def home(self) -> str:
        """The user's home folder."""

    def executable(self) -> str:
        """The interpreter running archlock (`sys.executable`)."""

    def head(self, path: str) -> bytes | None:
        """The first bytes of a file (symlinks followed); None if it cannot be read."""

    def exists(self, path: str) -> bool:
        """Whether anything (file, folder, link) is at `path`."""

    def is_executable(self, path: str) -> bool:
        """Whether `path` is an executable file (symlinks followed)."""

    def realpath(self, path: str) -> str:
        """`path` with every symlink resolved."""

    def glob(self, pattern: str) -> list[str]:
        """Paths matching a glob pattern, sorted."""

    def capture(self, argv: list[str]) -> Completed:
        """Run a short question (a candidate interpreter, xcode-select, uv python list)."""

    def execute(self, argv: list[str]) -> int:
        """Run a step of the plan with its output shown to the user; returns the exit status."""


class HostSystem:
    """The real machine."""

    def os_name(self) -> str:
        return platform.system()

    def machine(self) -> str:
        return platform.machine()

    def sysctl_int(self, name: str) -> int | None:
        value = probe.System().sysctl(name)  # the probe's in-process sysctlbyname(3)
        return value if isinstance(value, int) else None

    def sysctl_str(self, name: str) -> str | None:
        value = probe.System().sysctl(name)
        return value if isinstance(value, str) else None

    def environ(self) -> Mapping[str, str]:
        return os.environ

    def home(self) -> str:
        return str(Path.home())

    def executable(self) -> str:
        return sys.executable

    def head(self, path: str) -> bytes | None:
        try:
            with open(path, "rb") as handle:
                return handle.read(HEADER_BYTES)
        except OSError:
            return None

    def exists(self, path: str) -> bool:
        return os.path.lexists(path)

    def is_executable(self, path: str) -> bool:
        return os.path.isfile(path) and os.access(path, os.X_OK)

    def realpath(self, path: str) -> str:
        return os.path.realpath(path)

    def glob(self, pattern: str) -> list[str]:
        return sorted(glob.glob(pattern))

    def capture(self, argv: list[str]) -> Completed:
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return Completed(127, "", str(exc))
        return Completed(proc.returncode, proc.stdout, proc.stderr)

    def execute(self, argv: list[str]) -> int:
        if shutil.which(argv[0]) is None and not os.path.exists(argv[0]):
            print(f"archlock setup-mac: {argv[0]}: command not found", file=sys.stderr)
            return 127
        sys.stdout.flush()
        return subprocess.run(argv, check=False).returncode
