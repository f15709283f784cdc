"""All-or-nothing writes of a set of generated files (the lock set, render's outputs).

The protocol, for a set named NAME in a project:

1. Stage: every new file is written and synced under `.archlock/commit/NAME/` (beside the project,
   so a rename is atomic, but out of the build context, git and the linters' sight).
2. Intent: `.archlock/commit/NAME.json` (the journal) is written atomically, naming every target,
   its staged file and the sha256 of its new bytes (None: the target is removed).
3. Rename each staged file over its target, then remove the journal and the staging folder.

A run killed before step 2 changed nothing (the next run drops the staging folder); a run killed
after it left a journal, so readers refuse the set in one line and the next writer rolls the
commit forward (every staged file is complete and hashed). A tool that must rewrite a file in
place (`uv lock` and uv.lock) runs inside `in_place`: a backup and a journal first, so the next
writer puts the old bytes back. One writer per set at a time: a `flock` on `NAME.lock`, which a
child given `lock_fd` also holds, so a killed run's orphan cannot write behind the next run.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from archlock.core import lockfile
from archlock.core.fsutil import atomic_write, current_text, remove_stale_temps
from archlock.errors import ConfigError, DriftError

FOLDER = ".archlock/commit"
COMMANDS = {"lock": "archlock lock", "render": "archlock render"}
WAIT_SECONDS = 600.0  # for an earlier writer (or its orphaned uv) to finish
# Tests stop a writer at a named step to kill it exactly there (ARCHLOCK_TEST_PAUSE_AT=lock:staged).
# Only an exact "<set>:<step>" value pauses, and only for PAUSE_SECONDS: a stray variable delays
# a run, it never hangs one.
PAUSE_VARIABLE = "ARCHLOCK_TEST_PAUSE_AT"
PAUSE_SECONDS = 30.0


def journal_path(root: Path, name: str) -> Path:
    return root / FOLDER / f"{name}.json"


def staging_dir(root: Path, name: str) -> Path:
    return root / FOLDER / name


def torn_error(root: Path, name: str, where: Path | None = None) -> DriftError:
    """The one line for a torn set, naming the journal (or the file that shows the tear)."""
    path = where or journal_path(root, name)
    shown = path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path)
    return DriftError(
        f"an interrupted {name} left old and new files ({shown})",
        fix=f"run `{COMMANDS[name]}`",
    )


def refuse_torn(root: Path, name: str) -> None:
    """One DriftError line when an interrupted writer of the set left a journal."""
    if os.path.lexists(journal_path(root, name)):
        raise torn_error(root, name)


def refuse_torn_locks(root: Path, locks_dir: Path) -> None:
    """One line when an interrupted lock left old and new files: its journal, or an env whose
    two locks carry different stamps (what `lock`, `render`, `build` and `verify` refuse)."""
    refuse_torn(root, "lock")
    for txt in sorted(locks_dir.glob("*.txt")):
        pylock = locks_dir / f"pylock.{txt.stem}.toml"
        stamps = []
        for path in (txt, pylock):
            try:
                stamps.append(lockfile.read_stamp(current_text(path) or "")[0])
            except lockfile.StampError:
                stamps.append({})
        if all(stamps) and stamps[0] != stamps[1]:
            raise torn_error(root, "lock", txt)


def pause(name: str, step: str) -> None:
    """The test-only pause point (see PAUSE_VARIABLE): one dict lookup when unset."""
    if os.environ.get(PAUSE_VARIABLE) != f"{name}:{step}":
        return
    print(f"archlock: paused at {name}:{step} ({PAUSE_VARIABLE})", file=sys.stderr, flush=True)
    time.sleep(PAUSE_SECONDS)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _hash_of(path: Path) -> str | None:
    try:
        return sha256(path.read_bytes()) if path.is_file() else None
    except OSError:
        return None


class Writer:
    """The one writer of a set while `writing()` holds its lock."""

    def __init__(self, root: Path, name: str, lock_fd: int) -> None:
        self.root, self.name, self.lock_fd = root, name, lock_fd
        self.journal = journal_path(root, name)
        self.staging = staging_dir(root, name)

    # -- paths in the journal: relative to the root where they can be -----------------------
    def _key(self, path: Path) -> str:
        try:
            return path.absolute().relative_to(self.root).as_posix()
        except ValueError:
            return str(path.absolute())

    def _path(self, key: str) -> Path:
        return self.root / key  # an absolute key stays absolute

    def _write_journal(self, phase: str, entries: list[dict[str, str | None]]) -> None:
        record = {"set": self.name, "phase": phase, "files": entries}
        atomic_write(self.journal, json.dumps(record, indent=1) + "\n")

    def _finish(self) -> None:
        self.journal.unlink(missing_ok=True)
        shutil.rmtree(self.staging, ignore_errors=True)

    # -- step 1-3 ---------------------------------------------------------------------------
    def commit(
        self, files: Mapping[Path, str | bytes | None], modes: Mapping[Path, int] | None = None
    ) -> list[Path]:
        """Write `files` (None: remove) as one set; returns the paths that changed."""
        new = {p: d.encode("utf-8") if isinstance(d, str) else d for p, d in files.items()}
        changed = [
            p for p, d in new.items() if _hash_of(p) != (sha256(d) if d is not None else None)
        ]
        if not changed:
            return []
        entries = self._stage({p: new[p] for p in changed}, modes or {})
        pause(self.name, "staged")
        self._write_journal("commit", entries)
        pause(self.name, "journaled")
        try:
            self._roll_forward(entries, "renamed")
        except BaseException:  # an interrupt between renames: finish them if we still can
            self._roll_forward(entries, "renamed")
            raise
        return changed

    def _stage(
        self, files: Mapping[Path, bytes | None], modes: Mapping[Path, int]
    ) -> list[dict[str, str | None]]:
        shutil.rmtree(self.staging, ignore_errors=True)
        self.staging.mkdir(parents=True)
        entries: list[dict[str, str | None]] = []
        for number, (path, data) in enumerate(files.items()):
            staged = None
            if data is not None:
                _check_target(path)
                remove_stale_temps(path.parent)  # what older archlock versions left beside it
                staged = self._stage_one(number, path, data, modes.get(path))
            digest = sha256(data) if data is not None else None
            entries.append({"path": self._key(path), "staged": staged, "sha256": digest})
        return entries

    def _stage_one(self, number: int, path: Path, data: bytes, mode: int | None) -> str:
        staged = self.staging / f"{number}-{path.name}"
        try:
            with open(staged, "xb") as handle:
                handle.write(data)
                handle.flush()
                os.fchmod(handle.fileno(), mode if mode is not None else _mode_for(path))
                os.fsync(handle.fileno())
        except OSError as exc:
            raise _unwritable(staged, exc) from None
        return self._key(staged)

    def _roll_forward(self, entries: list[dict[str, str | None]], step: str) -> None:
        for number, entry in enumerate(entries, start=1):
            target, staged, digest = (
                self._path(str(entry["path"])),
                entry["staged"],
                entry["sha256"],
            )
            if digest is None:
                target.unlink(missing_ok=True)
            elif _hash_of(target) != digest:
                source = self._path(str(staged))
                if _hash_of(source) != digest:
                    raise ConfigError(
                        f"{self.journal}: the staged {source} of an interrupted {self.name} is "
                        "missing or changed",
                        fix=f"delete {self.staging} and {self.journal}, then run "
                        f"`{COMMANDS[self.name]}`",
                    )
                target.parent.mkdir(parents=True, exist_ok=True)
                try:
                    os.replace(source, target)
                except OSError as exc:
                    raise _unwritable(target, exc) from None
            pause(self.name, f"{step}-{number}")
        pause(self.name, f"{step}-all")
        self._finish()

    # -- a file a tool rewrites in place ----------------------------------------------------
    @contextmanager
    def in_place(self, path: Path) -> Iterator[None]:
        """Run the body, which may rewrite `path`; afterwards (and after a kill, at the next
        writer's start) `path` holds its old bytes again."""
        old = path.read_bytes() if path.is_file() else None
        entries = self._stage({path: old}, {}) if old is not None else []
        if old is None:
            entries = [{"path": self._key(path), "staged": None, "sha256": None}]
        self._write_journal("in-place", entries)
        pause(self.name, "in-place")
        try:
            yield
            pause(self.name, "in-place-done")
        finally:
            self._roll_forward(entries, "restored")


def _check_target(path: Path) -> None:
    if path.is_dir():
        raise ConfigError(f"{path}: is a folder, not a file", fix="name a file path")
    if os.path.lexists(path) and not path.is_file():
        raise ConfigError(f"{path}: is not a regular file", fix="name a regular file path")


def _mode_for(path: Path) -> int:
    try:
        return os.stat(path).st_mode & 0o7777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def _unwritable(path: Path, exc: OSError) -> ConfigError:
    return ConfigError(
        f"{path}: cannot write: {exc.strerror or exc}",
        fix="make the project folder writable (archlock stages files under .archlock/)",
    )


@contextmanager
def writing(root: Path, name: str) -> Iterator[Writer]:
    """Be the set's one writer: take its lock (waiting for an earlier writer), finish or roll
    back what an interrupted one left, then yield the Writer."""
    root = root.resolve()
    folder = root / FOLDER
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(folder / f"{name}.lock", os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise _unwritable(folder, exc) from None
    try:
        _lock(fd, folder / f"{name}.lock", name)
        writer = Writer(root, name, fd)
        done = recover(writer)
        if done:
            print(f"archlock {name}: note: {done}", file=sys.stderr)
        yield writer
    finally:
        os.close(fd)


def _lock(fd: int, path: Path, name: str) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    told = False
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() > deadline:
                raise ConfigError(
                    f"{path}: another `{COMMANDS[name]}` (or a child it left) still holds it",
                    fix="wait for it to finish, or end it",
                ) from None
            if not told:
                print(f"archlock {name}: waiting for an earlier run to finish", file=sys.stderr)
                told = True
            time.sleep(0.1)


def recover(writer: Writer) -> str | None:
    """Finish (roll forward) or undo what an interrupted writer left; says which, or None."""
    if not os.path.lexists(writer.journal):
        shutil.rmtree(writer.staging, ignore_errors=True)  # staged, no intent: nothing changed
        return None
    try:
        record = json.loads(writer.journal.read_text(encoding="utf-8"))
        writer._roll_forward(list(record["files"]), "recovered")
    except (OSError, ValueError, KeyError, TypeError, ConfigError):
        # unreadable, or its staged files are gone: the writer rewrites every file it decides on
        writer._finish()
        return f"dropped what an interrupted {writer.name} left"
    if record.get("phase") == "in-place":
        return f"rolled back an interrupted {writer.name}"
    return f"finished an interrupted {writer.name}"
