"""YAML loading that remembers where every key came from, so errors can name the line."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from archlock.errors import ConfigError


@dataclass
class Located:
    """A loaded YAML document plus `lines[("a", "b")]` = line of key a.b (1-based)."""

    data: Any
    lines: dict[tuple[str, ...], int] = field(default_factory=dict)

    def line(self, *keys: str) -> int:
        for depth in range(len(keys), 0, -1):
            if keys[:depth] in self.lines:
                return self.lines[keys[:depth]]
        return 1


def load_located(path: Path, text: str | None = None) -> Located:
    """Parse YAML safely; duplicate keys and syntax errors become one-line ConfigErrors."""
    if text is None:
        text = path.read_text(encoding="utf-8")
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else 1
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{path}:{line}: not valid YAML: {problem}", fix="correct the syntax") from None
    if node is None:
        return Located(data=None)
    located = Located(data=None)
    located.data = _convert(node, (), located, path, yaml.SafeLoader(""))
    return located


def _convert(node: yaml.Node, where: tuple[str, ...], out: Located, path: Path, loader: yaml.SafeLoader) -> Any:
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if not isinstance(key, str):
                raise ConfigError(
                    f"{path}:{key_node.start_mark.line + 1}: key {key!r} is not a string",
                    fix="write keys as plain names",
                )
            if key in result:
                dotted = ".".join((*where, key))
                raise ConfigError(
                    f"{path}:{key_node.start_mark.line + 1}: {dotted}: key appears twice",
                    fix="keep one of the two entries",
                )
            out.lines[(*where, key)] = key_node.start_mark.line + 1
            result[key] = _convert(value_node, (*where, key), out, path, loader)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_convert(item, where, out, path, loader) for item in node.value]
    return loader.construct_object(node, deep=True)
