"""Rendered Dockerfiles and bake files as data, for tests that assert on structure, not text.

A Dockerfile is read as BuildKit reads it: comment lines dropped (inside a continued
instruction too), a line ending in `\\` continued on the next, then stages split at each FROM.
A RUN becomes its mounts and the `&&`-separated steps of its shell command; ENV, ARG and LABEL
become their pairs. A bake file is read as the subset of HCL the template writes:
`kind "name" { ... }` blocks of `key = value` lines (JSON values) and one level of
`key = { ... }` maps.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Instruction:
    keyword: str  # upper case: RUN, ENV, COPY, ...
    args: str  # what follows the keyword; each continued line stripped, then joined by a space

    def pairs(self) -> dict[str, str]:
        """ENV / ARG / LABEL `KEY=VALUE ...` (quotes removed); a bare ARG name maps to ""."""
        words = shlex.split(self.args)
        return dict(word.split("=", 1) if "=" in word else (word, "") for word in words)


@dataclass(frozen=True)
class Run:
    mounts: tuple[dict[str, str], ...]  # each --mount=k=v,k=v as a table
    steps: tuple[str, ...]  # the shell command split at its ` && `


@dataclass
class Stage:
    name: str
    base: str
    platform: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def keywords(self) -> list[str]:
        return [i.keyword for i in self.instructions]

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]

    def find(self, keyword: str, starts: str = "") -> int:
        """The position of the first `keyword` instruction whose arguments start so."""
        return next(
            index
            for index, instruction in enumerate(self.instructions)
            if instruction.keyword == keyword and instruction.args.startswith(starts)
        )

    def runs(self) -> list[Run]:
        return [run_of(i.args) for i in self.all("RUN")]

    def env(self) -> dict[str, str]:
        merged: dict[str, str] = {}
        for instruction in self.all("ENV"):
            merged.update(instruction.pairs())
        return merged

    def labels(self) -> dict[str, str]:
        merged: dict[str, str] = {}
        for instruction in self.all("LABEL"):
            merged.update(instruction.pairs())
        return merged


@dataclass
class Dockerfile:
    global_args: dict[str, str]  # the ARGs before the first FROM
    stages: dict[str, Stage]
    comments: list[str]  # every comment line's text, `# ` removed

    def stage(self, name: str) -> Stage:
        return self.stages[name]


def logical_lines(text: str) -> tuple[list[str], list[str]]:
    """Instructions (continuations joined) and the comment lines."""
    lines: list[str] = []
    comments: list[str] = []
    pending: list[str] = []
    for raw in text.splitlines():
        stripped = raw.strip()
        if stripped.startswith("#"):
            comments.append(stripped.lstrip("#").strip())
            continue
        if not stripped and not pending:
            continue
        if stripped.endswith("\\"):
            pending.append(stripped[:-1].strip())
            continue
        lines.append(" ".join([*pending, stripped]).strip())
        pending = []
    assert not pending, "a continued instruction never ends"
    return lines, comments


def parse(text: str) -> Dockerfile:
    lines, comments = logical_lines(text)
    global_args: dict[str, str] = {}
    stages: dict[str, Stage] = {}
    current: Stage | None = None
    for line in lines:
        keyword, _, args = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            current = _stage(args)
            assert current.name not in stages, f"two stages named {current.name}"
            stages[current.name] = current
        elif current is None:
            assert keyword == "ARG", f"{keyword} before the first FROM"
            global_args.update(Instruction(keyword, args).pairs())
        else:
            current.instructions.append(Instruction(keyword, args.strip()))
    return Dockerfile(global_args, stages, comments)


def _stage(args: str) -> Stage:
    found = re.fullmatch(r"(?:--platform=(\S+) )?(\S+)(?: AS (\S+))?", args.strip(), re.I)
    assert found, f"FROM {args}"
    platform, base, name = found.groups()
    return Stage(name or base, base, platform)


def run_of(args: str) -> Run:
    """A RUN's leading --mount flags, then its shell command split into steps."""
    mounts: list[dict[str, str]] = []
    rest = args
    while rest.startswith("--"):
        flag, _, rest = rest.partition(" ")
        rest = rest.lstrip()
        if flag.startswith("--mount="):
            mounts.append(dict(pair.split("=", 1) for pair in flag[len("--mount=") :].split(",")))
    return Run(tuple(mounts), tuple(step.strip() for step in rest.split(" && ")))


BLOCK_RE = re.compile(r'(\w+) "([^"]+)" \{')
MAP_RE = re.compile(r"([\w-]+) = \{")
ATTRIBUTE_RE = re.compile(r"([\w-]+) = (.+)")


def parse_bake(text: str) -> dict[tuple[str, str], dict[str, Any]]:
    """(block kind, name) -> its attributes, e.g. ("target", "linux-arm64-cpu") -> {...}."""
    blocks: dict[tuple[str, str], dict[str, Any]] = {}
    open_tables: list[dict[str, Any]] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line == "}":
            open_tables.pop()
        elif not open_tables and (block := BLOCK_RE.fullmatch(line)):
            key = (block.group(1), block.group(2))
            assert key not in blocks, f"two blocks {key}"
            blocks[key] = {}
            open_tables.append(blocks[key])
        elif open_tables and (table := MAP_RE.fullmatch(line)):
            open_tables[-1][table.group(1)] = {}
            open_tables.append(open_tables[-1][table.group(1)])
        else:
            attribute = ATTRIBUTE_RE.fullmatch(line)
            assert attribute and open_tables, f"not the bake subset: {line!r}"
            open_tables[-1][attribute.group(1)] = json.loads(attribute.group(2))
    assert not open_tables, "a block never closes"
    return blocks
