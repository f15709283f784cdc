"""The one JSON loader for result and report files: caps on size, depth and numbers.

Every failure (unreadable, not UTF-8, not JSON, NaN or Infinity, a number too large, nested too
deeply) is one ConfigError line naming the file and the fix.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from archlock.core.fsutil import read_input
from archlock.errors import ConfigError

LIMIT_BYTES = 16 << 20
MAX_DEPTH = 64
MAX_DIGITS = 40  # no count, size or time archlock writes needs more


class _Refused(ValueError):
    pass


def _constant(name: str) -> Any:
    raise _Refused(f"{name} is not a number JSON allows")


def _integer(text: str) -> int:
    if len(text.lstrip("-")) > MAX_DIGITS:
        raise _Refused(f"a {len(text)}-digit number is too large")
    return int(text)


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _Refused(f"{text[:20]} is too large a number")
    return value


def load_json(
    path: Path,
    *,
    what: str = "JSON file",
    fix: str = "",
    limit: int = LIMIT_BYTES,
    allow_nan: bool = False,
) -> Any:
    """The parsed value of `path`, or a ConfigError naming the file, the problem and `fix`.
    `allow_nan` reads NaN and Infinity (a diverged training run writes them) as floats."""
    text = read_input(path, what=what, fix=fix, limit=limit)
    return parse_json(text, path, what=what, fix=fix, allow_nan=allow_nan)


def parse_json(
    text: str, path: Path | str, *, what: str = "JSON file", fix: str = "", allow_nan: bool = False
) -> Any:
    fix = fix or f"regenerate the {what}"
    constant = float if allow_nan else _constant
    number = float if allow_nan else _float
    try:
        value = json.loads(text, parse_constant=constant, parse_int=_integer, parse_float=number)
    except _Refused as exc:
        raise ConfigError(f"{path}: {what}: {exc}", fix=fix) from None
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno} column {exc.colno}: {exc.msg}"
        raise ConfigError(f"{path}: not JSON ({where}); expected a {what}", fix=fix) from None
    except RecursionError:
        value = None
        depth = MAX_DEPTH + 1
    else:
        depth = _depth(value)
    if depth < 0:
        raise ConfigError(
            f"{path}: {what} holds a lone surrogate escape (\\ud800-\\udfff)", fix=fix
        )
    if depth > MAX_DEPTH:
        raise ConfigError(f"{path}: {what} is nested over {MAX_DEPTH} levels deep", fix=fix)
    return value


def _depth(value: Any) -> int:
    """Nesting depth without recursion (a deep value must not exhaust the stack here); -1 when a
    string cannot be printed as UTF-8."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        item, level = stack.pop()
        deepest = max(deepest, level)
        if level > MAX_DEPTH:
            return level
        if isinstance(item, dict):
            children = [*item.values(), *item.keys()]
        elif isinstance(item, list):
            children = item
        else:
            if isinstance(item, str) and not _printable(item):
                return -1
            continue
        stack.extend((child, level + 1) for child in children)
    return deepest


def _printable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
