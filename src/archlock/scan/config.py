"""`[tool.archlock.scan]` in the scanned project's pyproject.toml: which rules run where.

    [tool.archlock.scan]
    disable = ["AL105"]                      # rules off everywhere
    per-path = { "tests/*" = ["AL101"] }     # rules off for paths matching a glob
    exclude = ["tests/fixtures"]             # paths not scanned at all
    fail-on = "error"                        # default for --fail-on

Globs match POSIX paths relative to the scan base (the project folder) with fnmatch rules (`*`
crosses `/`); a glob that matches a folder covers everything under it. Unknown keys and rule
ids are errors with a did-you-mean.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path, PurePosixPath
from typing import Any

from archlock.core.settings import raw_table
from archlock.core.tomlsrc import load_toml
from archlock.errors import ConfigError
from archlock.scan.rules import RULES_BY_ID, SEVERITIES

TABLE = "[tool.archlock.scan]"
KEYS = ("disable", "per-path", "exclude", "fail-on")
FAIL_ON_CHOICES = (*SEVERITIES, "never")


def matches(path: str, pattern: str) -> bool:
    """`path` or one of its folders matches the glob."""
    pure = PurePosixPath(path)
    candidates = [str(pure), *(str(parent) for parent in pure.parents if str(parent) != ".")]
    return any(fnmatchcase(candidate, pattern) for candidate in candidates)


@dataclass(frozen=True, kw_only=True)
class ScanConfig:
    disable: frozenset[str] = frozenset()
    per_path: tuple[tuple[str, frozenset[str]], ...] = ()
    exclude: tuple[str, ...] = ()
    fail_on: str | None = None

    def enabled(self, rule_id: str, path: str) -> bool:
        if rule_id in self.disable:
            return False
        return not any(rule_id in ids and matches(path, glob) for glob, ids in self.per_path)

    def excluded(self, path: str) -> bool:
        return any(matches(path, glob) for glob in self.exclude)


def _suggest(word: str, choices: Any) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f"did you mean {close[0]!r}?" if close else f"use one of: {', '.join(choices)}"


def _strings(value: Any, where: str, source: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        message = f"{source}: {TABLE} {where} must be a list of strings"
        raise ConfigError(message, fix=f'{where} = ["..."]')
    return tuple(value)


def _rule_ids(value: Any, where: str, source: str) -> frozenset[str]:
    ids = _strings(value, where, source)
    for rule_id in ids:
        if rule_id not in RULES_BY_ID:
            raise ConfigError(
                f"{source}: {TABLE} {where} names unknown rule {rule_id!r}",
                fix=f"{_suggest(rule_id, RULES_BY_ID)} (`archlock scan --list-rules`)",
            )
    return frozenset(ids)


def _per_path(value: Any, source: str) -> tuple[tuple[str, frozenset[str]], ...]:
    if not isinstance(value, dict):
        message = f"{source}: {TABLE} per-path must be a table"
        raise ConfigError(message, fix='per-path = { "tests/*" = ["AL101"] }')
    pairs = value.items()
    return tuple((glob, _rule_ids(ids, f"per-path {glob!r}", source)) for glob, ids in pairs)


def _fail_on(value: Any, source: str) -> str:
    if value not in FAIL_ON_CHOICES:
        message = f"{source}: {TABLE} fail-on is {value!r}"
        raise ConfigError(message, fix=_suggest(str(value), FAIL_ON_CHOICES))
    return str(value)


def from_table(table: Any, source: str) -> ScanConfig:
    """Validate the table's contents; `source` names the file in error messages."""
    if not isinstance(table, dict):
        message = f"{source}: {TABLE} must be a table"
        raise ConfigError(message, fix='[tool.archlock.scan] disable = ["AL105"]')
    for key in table:
        if key not in KEYS:
            raise ConfigError(f"{source}: unknown key {key!r} in {TABLE}", fix=_suggest(key, KEYS))
    return ScanConfig(
        disable=_rule_ids(table.get("disable", []), "disable", source),
        per_path=_per_path(table.get("per-path", {}), source),
        exclude=_strings(table.get("exclude", []), "exclude", source),
        fail_on=_fail_on(table["fail-on"], source) if "fail-on" in table else None,
    )


def load(pyproject: Path) -> ScanConfig:
    """The scan config of the project whose pyproject.toml this is (defaults when absent)."""
    if not os.path.lexists(pyproject):
        return ScanConfig()
    data = load_toml(pyproject, what="pyproject.toml", fix="fix the file's syntax")
    archlock = raw_table(data, pyproject)
    if "scan" not in archlock:
        return ScanConfig()
    return from_table(archlock["scan"], str(pyproject))
