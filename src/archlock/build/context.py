"""The build context: what `COPY . /app` may take from the project, and how big that is.

The generated `.dockerignore` (templates/dockerignore.j2) is archlock's own leave-outs, the ML
defaults below (datasets, checkpoints, run logs, weight files), then the project's `.gitignore`
translated to dockerignore patterns (the project's own `!` exceptions win over the defaults),
then the env's lock (kept beside the source, whatever the rest says). `measure` walks the
project with those patterns applied the way Docker applies them (the last matching pattern
wins; a pattern that matches a folder matches everything in it), so `render` and `build` can say
how big the context is and, past CONTEXT_WARN_BYTES, which folders make it so.
Only the project's top-level `.gitignore` is read (nested ones and git's global excludes are
not): what it misses, write there.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from archlock.core.fsutil import read_input
from archlock.core.text import has_control

CONTEXT_WARN_BYTES = 200 * 1000 * 1000
# Folders and files an image never needs (tools' state, archlock's own outputs).
TOOL_DEFAULTS = (
    ".git",
    ".github",
    "**/.venv",
    "**/venv",
    ".nox",
    ".tox",
    ".archlock",
    "**/.pytest_cache",
    "**/.ruff_cache",
    "**/.mypy_cache",
    "**/.ipynb_checkpoints",
    "**/.hypothesis",
    "**/.DS_Store",
    "**/__pycache__",
    "**/*.pyc",
    "**/*.egg-info",
    "build",
    "dist",
    "results",
    "docker",
)
# What training writes next to its code: datasets, checkpoints, run logs, weights. `data/` keeps
# its scripts (a `data/<set>/prepare.py` is code the run needs in the image).
ML_DEFAULTS = (
    "data/**",
    "!data/**/*.py",
    "!data/**/*.sh",
    "checkpoints",
    "outputs",
    "runs",
    "**/wandb",
    "**/lightning_logs",
    "**/mlruns",
    "**/*.pt",
    "**/*.pth",
    "**/*.ckpt",
    "**/*.bin",
    "**/*.safetensors",
    "**/*.onnx",
)


def gitignore_patterns(root: Path) -> list[str]:
    """The project's `.gitignore` as dockerignore patterns (Docker anchors every pattern at the
    context root; git matches a name without a slash at any depth)."""
    path = root / ".gitignore"
    if not path.is_file():
        return []
    text = read_input(path, what=".gitignore", fix="make it a readable text file")
    return [p for line in text.splitlines() if (p := from_gitignore(line)) is not None]


def from_gitignore(line: str) -> str | None:
    """One .gitignore line as a dockerignore pattern; None for blanks, comments, and lines no
    pattern can carry (control characters)."""
    line = line.rstrip(" \t")
    if not line or line.startswith("#") or has_control(line):
        return None
    negate = line.startswith("!")
    body = line[1:] if negate else line
    if body.startswith(("\\#", "\\!")):
        body = body[1:]
    body = body.rstrip("/")  # "only folders": a dockerignore pattern cannot say so
    if not body.strip("/"):
        return None
    anchored = "/" in body
    body = body.lstrip("/")
    body = body.replace("[!", "[^")  # git's negated class, in Go's spelling
    pattern = body if anchored or body.startswith("**/") else f"**/{body}"
    if not negate and pattern.startswith(("#", "!")):
        pattern = "/" + pattern  # a literal name, not a comment or an exception
    return ("!" if negate else "") + pattern


def context_patterns(root: Path) -> list[str]:
    """What the generated .dockerignore lists before the env's lock: defaults, then the
    project's."""
    return [*TOOL_DEFAULTS, *ML_DEFAULTS, *gitignore_patterns(root)]


# -- matching, the way Docker does it -------------------------------------------------------------
@dataclass(frozen=True)
class Pattern:
    text: str
    exclusion: bool  # a `!` line: keeps what an earlier line left out
    regex: re.Pattern[str]


def compile_pattern(raw: str) -> Pattern | None:
    exclusion = raw.startswith("!")
    text = os.path.normpath(raw[1:] if exclusion else raw).lstrip("/")
    if text in ("", "."):
        return None
    try:
        regex = re.compile(glob_regex(text))
    except re.error:  # a class Go rejects too, e.g. [z-a]: the text itself, literally
        regex = re.compile(re.escape(text) + "$")
    return Pattern(text, exclusion, regex)


def glob_regex(pattern: str) -> str:
    """Go's filepath.Match with `**` (any number of folders), as Docker's matcher reads it."""
    out, i = [], 0
    while i < len(pattern):
        char = pattern[i]
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif char == "*":
            out.append("[^/]*")
            i += 1
        elif char == "?":
            out.append("[^/]")
            i += 1
        elif char == "[" and "]" in pattern[i + 1 :]:
            end = pattern.index("]", i + 1)
            out.append("[" + pattern[i + 1 : end].replace("\\", "\\\\") + "]")
            i = end + 1
        elif char == "\\" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
        else:
            out.append(re.escape(char))
            i += 1
    return "".join(out) + "$"


WILDCARD = re.compile(r"[*?\[\\]")


class Matcher:
    def __init__(self, patterns: list[str]) -> None:
        self.patterns = [p for raw in patterns if (p := compile_pattern(raw)) is not None]
        self.exceptions = [p.text for p in self.patterns if p.exclusion]

    def excluded(self, path: str) -> bool:
        """`path` (relative, with /) is left out: the last pattern matching it or a parent wins."""
        parents = [path[:i] for i, char in enumerate(path) if char == "/"]
        left_out = False
        for pattern in self.patterns:
            if pattern.regex.match(path) or any(pattern.regex.match(p) for p in parents):
                left_out = not pattern.exclusion
        return left_out

    def may_keep_inside(self, folder: str) -> bool:
        """An exception could take back something inside this left-out folder: its text up to the
        first wildcard fits the folder's path (BuildKit walks on then; so do we)."""
        inside = folder + "/"
        for text in self.exceptions:
            literal = WILDCARD.split(text + "/", maxsplit=1)[0]
            if literal.startswith(inside) or inside.startswith(literal):
                return True
        return False


# -- measuring ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ContextSize:
    total: int  # bytes of the files that go into the context
    files: int
    by_top: tuple[tuple[str, int], ...]  # top-level entries, biggest first


def measure(root: Path, patterns: list[str]) -> ContextSize:
    """Walk `root` as Docker would send it: sizes of files not left out, links not followed."""
    matcher = Matcher(patterns)
    sizes: dict[str, int] = {}
    count = 0
    stack = [""]
    while stack:
        folder = stack.pop()
        try:
            entries = list(os.scandir(root / folder if folder else root))
        except OSError:
            continue
        for entry in entries:
            rel = f"{folder}/{entry.name}" if folder else entry.name
            left_out = matcher.excluded(rel)
            if entry.is_dir(follow_symlinks=False):
                if not left_out or matcher.may_keep_inside(rel):
                    stack.append(rel)
            elif not left_out:
                top = rel.split("/", 1)[0]
                sizes[top] = sizes.get(top, 0) + entry.stat(follow_symlinks=False).st_size
                count += 1
    ranked = tuple(sorted(sizes.items(), key=lambda item: (-item[1], item[0])))
    return ContextSize(sum(sizes.values()), count, ranked)


def human(size: int) -> str:
    if size < 1000:
        return f"{size} B"
    value = float(size)
    for unit in ("kB", "MB", "GB"):
        value /= 1000
        if value < 1000 or unit == "GB":
            break
    return f"{value:.1f} {unit}"


def describe(size: ContextSize, limit: int = CONTEXT_WARN_BYTES) -> str:
    """One line: the size; past `limit`, the biggest top-level entries and what to do."""
    line = f"build context {human(size.total)} ({size.files} files)"
    if size.total <= limit:
        return line
    biggest = ", ".join(f"{name} {human(n)}" for name, n in size.by_top[:3])
    return (
        f"{line}, over {human(limit)}: biggest {biggest}; add what the image does not need to "
        ".gitignore (the generated .dockerignore follows it) and run archlock render"
    )
