"""Reading verify results for the matrix: `archlock.verify/1` files, each checked for the keys
and types the matrix reads, so a damaged or foreign file is one line naming the key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from archlock.core.jsonsrc import load_json
from archlock.errors import ConfigError

VERIFY_SCHEMA = "archlock.verify/1"


def load_results(folder: Path) -> list[tuple[str, dict[str, Any]]]:
    if not folder.is_dir():
        raise ConfigError(
            f"{folder}: no results folder", fix="run archlock verify (or nox -s verify) first"
        )
    found = []
    for path in sorted(folder.glob("*.json")):
        data = load_json(path, what="verify result", fix=REDO, allow_nan=True)
        if isinstance(data, dict) and data.get("schema") == VERIFY_SCHEMA:
            check_result(path, data)
            found.append((path.name, data))
    if not found:
        raise ConfigError(
            f"{folder}: no {VERIFY_SCHEMA} result files",
            fix="run archlock verify (or nox -s verify) first",
        )
    return found


REDO = "delete it or re-run archlock verify"
TEXT, NUMBER, FACTS = (str,), (int, float), (dict,)
# what the matrix reads from a result, and its types (None is always accepted but for env)
RESULT_SHAPE: dict[str, tuple[type, ...]] = {
    "env": TEXT,
    "mode": TEXT,
    "image": FACTS,
    "image.tag": TEXT,
    "image.digest": TEXT,
    "lock": FACTS,
    "runner": FACTS,
    "hardware": FACTS,
    "host": FACTS,
    "host.description": TEXT,
    "device": TEXT,
    "created": TEXT,
    "status": TEXT,
    "checks": FACTS,
    "suite": FACTS,
    "suite.checks": FACTS,
}
CHECK_SHAPE: dict[str, tuple[type, ...]] = {
    "status": TEXT,
    "why": TEXT,
    "summary": TEXT,
    "metric": NUMBER,
    "tolerance": NUMBER,
    "command": TEXT,
}


def _value(data: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        data = data.get(part) if isinstance(data, dict) else None
    return data


def _expect(path: Path, key: str, value: Any, types: tuple[type, ...]) -> None:
    if value is not None and (not isinstance(value, types) or isinstance(value, bool)):
        words: dict[type, str] = {str: "a string", dict: "an object"}
        names = "a number" if types == NUMBER else words[types[0]]
        raise ConfigError(
            f"{path}: {key}: expected {names}, found {type(value).__name__}", fix=REDO
        )


def check_result(path: Path, data: dict[str, Any]) -> None:
    """The keys the matrix reads hold the types verify writes: else one line naming the key."""
    if not isinstance(data.get("env"), str):
        raise ConfigError(f"{path}: env: expected the env's name (a string)", fix=REDO)
    for key, types in RESULT_SHAPE.items():
        _expect(path, key, _value(data, key), types)
    for name, found in (data.get("checks") or {}).items():
        _expect(path, f"checks.{name}", found, FACTS)
        for key, types in CHECK_SHAPE.items():
            _expect(path, f"checks.{name}.{key}", (found or {}).get(key), types)
        if found and not isinstance(found.get("status"), str):
            raise ConfigError(f"{path}: checks.{name}.status: missing", fix=REDO)
    for name, raw in (_value(data, "suite.checks") or {}).items():
        _expect(path, f"suite.checks.{name}", raw, FACTS)
    losses = _value(data, "suite.checks.training.losses")
    if losses is not None and not (
        isinstance(losses, list)
        and all(isinstance(x, NUMBER) and not isinstance(x, bool) for x in losses)
    ):
        raise ConfigError(
            f"{path}: suite.checks.training.losses: expected a list of numbers", fix=REDO
        )
