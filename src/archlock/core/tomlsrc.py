"""The one TOML loader (pyproject.toml, pylock files): every failure is one ConfigError line."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from archlock.core.fsutil import read_input
from archlock.errors import ConfigError


def load_toml(
    path: Path, *, what: str = "TOML file", fix: str = "correct the syntax"
) -> dict[str, Any]:
    """The parsed table of `path`, or a ConfigError naming the file, the problem and `fix`."""
    return parse_toml(read_input(path, what=what, fix=fix), path, fix=fix)


def parse_toml(text: str, path: Path, *, fix: str = "correct the syntax") -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except ValueError as exc:  # TOMLDecodeError, and integers past Python's digit limit
        raise ConfigError(
            f"{path}: not valid TOML: {str(exc).splitlines()[0][:120]}", fix=fix
        ) from None
    except RecursionError:
        raise ConfigError(f"{path}: not valid TOML: nested too deeply", fix=fix) from None


def table(data: Any, key: str, path: Path, fix: str) -> dict[str, Any]:
    """`data[key]` when it is a table (missing: empty), else a ConfigError naming the key."""
    value = data.get(key, {}) if isinstance(data, dict) else None
    if not isinstance(value, dict):
        raise ConfigError(f"{path}: {key}: must be a table", fix=fix)
    return value


def array_of_tables(data: Any, key: str, path: Path, fix: str) -> list[dict[str, Any]]:
    """`data[key]` when it is an array of tables (missing: empty), else a ConfigError."""
    value = data.get(key, []) if isinstance(data, dict) else None
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise ConfigError(f"{path}: {key}: must be an array of tables ([[{key}]])", fix=fix)
    return value
