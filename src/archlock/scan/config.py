"""`[tool.archlock.scan]` in the scanned project's pyproject.toml: which rules run where.

    [tool.archlock.scan]
    disable = ["AL105"]                      # rules off everywhere
    per-path = { "tests/*" = ["AL101"] }     # rules off for paths matching a glob
    exclude = ["tests/fixtures"]             # paths not scanned at all
    fail-on = "error"                        # default for --fail-on

Globs match POSIX paths relative to the scan base (the project folder) with fnmatch rules (`*`
crosses `/`); a glob that matches a folder covers everything under it. Unknown keys and rule
ids are errors with a did-you-mean (keys and types through archlock.core.settings).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path, PurePosixPath
from typing import Any

from archlock.core import settings
from archlock.core.settings import raw_table, suggest
from archlock.core.tomlsrc import load_toml
from archlock.errors import ConfigError
from archlock.scan.rules import RULES_BY_ID, SEVERITIES

TABLE = "[tool.archlock.scan]"
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


def _rule_ids(ids: tuple[str, ...], where: str, source: str) -> frozenset[str]:
    for rule_id in ids:
        if rule_id not in RULES_BY_ID:
            raise ConfigError(
                f"{source}: {TABLE} {where} names unknown rule {rule_id!r}",
                fix=f"{suggest(rule_id, RULES_BY_ID)} (`archlock scan --list-rules`)",
            )
    return frozenset(ids)


def _fail_on(value: str, source: str) -> str:
    if value not in FAIL_ON_CHOICES:
        message = f"{source}: {TABLE} fail-on is {value!r}"
        raise ConfigError(message, fix=suggest(str(value), FAIL_ON_CHOICES))
    return value


def from_table(table: Any, source: str) -> ScanConfig:
    """Validate the table's contents; `source` names the file in error messages. Keys and types
    are archlock.core.settings' (one reader for every [tool.archlock.*]); rule ids are checked
    here."""
    if not isinstance(table, dict):
        message = f"{source}: {TABLE} must be a table"
        raise ConfigError(message, fix='[tool.archlock.scan] disable = ["AL105"]')
    values = settings.read({"scan": table}, settings.Scan, Path(source))
    per_path = values.per_path.items()
    return ScanConfig(
        disable=_rule_ids(values.disable, "disable", source),
        per_path=tuple(
            (glob, _rule_ids(ids, f"per-path {glob!r}", source)) for glob, ids in per_path
        ),
        exclude=values.exclude,
        fail_on=None if values.fail_on is None else _fail_on(values.fail_on, source),
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
