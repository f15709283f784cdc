"""Which `python3` a new shell finds today, why, and the PATH lines that put a native one first.

The lines are always printed. An rc file is changed only with `--fix-shell`: a backup first,
then one marked block that a second run finds and leaves alone (or updates in place).
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from archlock.core.fsutil import atomic_write
from archlock.errors import ConfigError
from archlock.mac.host import HostFacts
from archlock.mac.interpreters import Candidate, Judgement, judge, path_entries
from archlock.mac.system import MacSystem

BEGIN = "# >>> archlock >>>"
END = "# <<< archlock <<<"
RC_FILES = {"zsh": ".zprofile", "bash": ".bash_profile"}  # login files: where PATH belongs on macOS
NATIVE_TERMINAL = (
    'your terminal runs under Rosetta 2: untick "Open using Rosetta" in its Get Info window, '
    "or start a native shell with `arch -arm64 /bin/zsh -l`"
)


@dataclass(frozen=True)
class ShellAdvice:
    today: tuple[str, ...]  # which python3 / python3.X win today, and why
    native_dir: str | None  # the folder to put first on PATH; None when nothing needs fixing
    rosetta_terminal: bool  # the shell itself is translated: no PATH line can fix that

    @property
    def path_line(self) -> str | None:
        return f'export PATH="{self.native_dir}:$PATH"' if self.native_dir else None

    def lines(self) -> list[str]:
        """The exact fixes to print."""
        out = [NATIVE_TERMINAL] if self.rosetta_terminal else []
        if self.path_line:
            for shell, rc in RC_FILES.items():
                out.append(f"{shell}: add to ~/{rc}:  {self.path_line}")
            out.append("then open a new terminal (or run `hash -r`)")
        return out


def advise(
    system: MacSystem, host: HostFacts, chosen: Judgement | None, python: str
) -> ShellAdvice:
    native_dir = _native_dir(system, chosen)
    today, wrong = [], False
    for name in ("python3", f"python{python}"):
        line, native = _who_wins(system, name, python, native_dir)
        today.append(line)
        wrong = wrong or not native
    rosetta_terminal = host.translated and host.self_can_run_native
    return ShellAdvice(tuple(today), native_dir if wrong else None, rosetta_terminal)


def _native_dir(system: MacSystem, chosen: Judgement | None) -> str:
    if chosen is not None:
        return os.path.dirname(chosen.candidate.path)
    env = system.environ()  # where `uv python install` puts python3.X
    return env.get("UV_PYTHON_BIN_DIR") or env.get("XDG_BIN_HOME") or f"{system.home()}/.local/bin"


def _who_wins(system: MacSystem, name: str, python: str, native_dir: str) -> tuple[str, bool]:
    folders = [f for f in system.environ().get("PATH", "").split(os.pathsep) if f]
    hits = path_entries(system, name)
    fix_at = _position(folders, native_dir)
    if not hits:
        return f"`{name}`: not on PATH; {_where(native_dir, fix_at)}", False
    verdict = judge(system, Candidate(hits[0], "PATH"), python)
    native = verdict.machine == "arm64"
    what = f"native arm64, Python {verdict.version}" if native else verdict.reason
    at = _position(folders, os.path.dirname(hits[0]))
    line = f"`{name}` today is {hits[0]} ({what}): the first {name} on PATH (entry {at})"
    if not native:
        line += f"; {_where(native_dir, fix_at)}"
    return line, native


def _position(folders: list[str], folder: str) -> int | None:
    clean = [f.rstrip("/") for f in folders]
    return clean.index(folder.rstrip("/")) + 1 if folder.rstrip("/") in clean else None


def _where(native_dir: str, position: int | None) -> str:
    if position is None:
        return f"the native {native_dir} is not on PATH"
    return f"the native {native_dir} comes later (entry {position})"


# -- the rc-file block (only with --fix-shell) -------------------------------------------------


@dataclass(frozen=True)
class RcChange:
    path: Path
    changed: bool
    backup: Path | None


def rc_file(shell: str | None, home: Path) -> Path:
    name = os.path.basename(shell or "")
    if name not in RC_FILES:
        raise ConfigError(
            f"--fix-shell: cannot edit the startup file of shell {name or '(SHELL unset)'}",
            fix="add the printed PATH line to your shell's startup file yourself",
        )
    return home / RC_FILES[name]


def block(path_line: str) -> str:
    note = "# written by `archlock setup-mac --fix-shell`: a native (arm64) Python first on PATH"
    return f"{BEGIN}\n{note}\n{path_line}\n{END}\n"


def with_block(text: str, new_block: str, where: Path) -> str:
    """`text` with the archlock block replaced in place, or appended when there is none."""
    start = text.find(BEGIN)
    if start < 0:
        glue = "" if not text or text.endswith("\n") else "\n"
        return f"{text}{glue}\n{new_block}" if text else new_block
    end = text.find(END, start)
    if end < 0:
        raise ConfigError(
            f"{where}: has {BEGIN!r} but no {END!r}", fix="remove the unfinished block and rerun"
        )
    after = text[end + len(END) :]
    return text[:start] + new_block + after.removeprefix("\n")


def fix_rc(path: Path, path_line: str, now: datetime | None = None) -> RcChange:
    """Write the block into `path` (a symlinked rc file is edited where it lives)."""
    target = path.resolve()
    old = target.read_text(encoding="utf-8") if target.exists() else ""
    new = with_block(old, block(path_line), path)
    if new == old:
        return RcChange(path, False, None)
    backup = None
    if target.exists():
        stamp = (now or datetime.now()).strftime("%Y%m%d-%H%M%S")
        backup = target.with_name(f"{target.name}.archlock-{stamp}.bak")
        shutil.copy2(target, backup)
    mode = target.stat().st_mode & 0o777 if target.exists() else 0o644
    atomic_write(target, new)
    os.chmod(target, mode)
    return RcChange(path, True, backup)
