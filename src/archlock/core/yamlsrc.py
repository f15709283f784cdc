"""The one YAML loader: every key's line remembered, every failure one ConfigError line.

It reads only regular files (never a FIFO or a device), refuses non-UTF-8 text, caps how many
nodes a document may expand to (alias bombs), refuses recursive aliases, merge keys and tags
outside the YAML core schema, and caps nesting depth.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from archlock.core.fsutil import read_input
from archlock.errors import ConfigError

MAX_NODES = 20_000  # a spec has a few dozen; an alias bomb expands to billions
MAX_DEPTH = 64
LIMIT_BYTES = 1 << 20
_CORE = "tag:yaml.org,2002:"
SCALAR_TAGS = {_CORE + name for name in ("str", "int", "float", "bool", "null")}
MAP_TAG = _CORE + "map"
SEQ_TAG = _CORE + "seq"


@dataclass
class Located:
    """A loaded YAML document plus `lines[("a", "b")]` = line of key a.b (1-based) and
    `texts[("a", "b")]` = a.b's scalar as written (`3.10`, which YAML reads as the float 3.1)."""

    data: Any
    lines: dict[tuple[str, ...], int] = field(default_factory=dict)
    texts: dict[tuple[str, ...], str] = field(default_factory=dict)

    def text(self, keys: tuple[str, ...], value: Any) -> str:
        """The value as the user wrote it, else as Python shows it."""
        return self.texts.get(keys, str(value))

    def line(self, *keys: str) -> int:
        for depth in range(len(keys), 0, -1):
            if keys[:depth] in self.lines:
                return self.lines[keys[:depth]]
        return 1


@dataclass
class _Walk:
    path: Path
    out: Located
    loader: yaml.SafeLoader
    nodes: int = 0
    open: set[int] = field(default_factory=set)  # ids of collections being converted


def load_located(path: Path, text: str | None = None) -> Located:
    """Parse YAML safely; any problem becomes a one-line ConfigError naming the file and line."""
    if text is None:
        text = read_input(path, what="YAML file", limit=LIMIT_BYTES)
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else 1
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(
            f"{path}:{line}: not valid YAML: {problem}", fix="correct the syntax"
        ) from None
    except RecursionError:
        raise ConfigError(
            f"{path}: YAML nested too deeply", fix=f"keep nesting under {MAX_DEPTH} levels"
        ) from None
    if node is None:
        return Located(data=None)
    walk = _Walk(path, Located(data=None), yaml.SafeLoader(""))
    walk.out.data = _convert(node, (), walk, 0)
    return walk.out


def _fail(walk: _Walk, node: yaml.Node, message: str, fix: str) -> ConfigError:
    return ConfigError(f"{walk.path}:{node.start_mark.line + 1}: {message}", fix=fix)


def _convert(node: yaml.Node, where: tuple[str, ...], walk: _Walk, depth: int) -> Any:
    walk.nodes += 1
    if walk.nodes > MAX_NODES:
        raise _fail(
            walk, node, f"YAML expands to over {MAX_NODES} values (aliases?)", "write values out"
        )
    if depth > MAX_DEPTH:
        raise _fail(walk, node, "YAML nested too deeply", f"keep nesting under {MAX_DEPTH} levels")
    if isinstance(node, yaml.ScalarNode):
        return _scalar(node, walk)
    if id(node) in walk.open:
        raise _fail(walk, node, "an alias refers to the value that contains it", "remove the alias")
    walk.open.add(id(node))
    try:
        if isinstance(node, yaml.MappingNode) and node.tag == MAP_TAG:
            return _mapping(node, where, walk, depth)
        if isinstance(node, yaml.SequenceNode) and node.tag == SEQ_TAG:
            return [_convert(item, where, walk, depth + 1) for item in node.value]
        raise _fail(walk, node, f"tag {node.tag!r} is not supported", "remove the tag")
    finally:
        walk.open.discard(id(node))


def _mapping(
    node: yaml.MappingNode, where: tuple[str, ...], walk: _Walk, depth: int
) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key_node, value_node in node.value:
        if key_node.tag == _CORE + "merge":
            raise _fail(walk, key_node, "merge keys (<<) are not supported", "write the keys out")
        key = (
            _convert(key_node, where, walk, depth + 1)
            if isinstance(key_node, yaml.ScalarNode)
            else None
        )
        if not isinstance(key, str):
            shown = key if key is not None else key_node.tag.rsplit(":", 1)[-1]
            raise _fail(
                walk, key_node, f"key {shown!r} is not a string", "write keys as plain names"
            )
        if key in result:
            dotted = ".".join((*where, key))
            raise _fail(
                walk, key_node, f"{dotted}: key appears twice", "keep one of the two entries"
            )
        walk.out.lines[(*where, key)] = key_node.start_mark.line + 1
        if isinstance(value_node, yaml.ScalarNode):
            walk.out.texts[(*where, key)] = value_node.value
        result[key] = _convert(value_node, (*where, key), walk, depth + 1)
    return result


def _scalar(node: yaml.ScalarNode, walk: _Walk) -> Any:
    if node.tag == _CORE + "timestamp":
        return node.value  # a date is text to every key that takes one
    if node.tag not in SCALAR_TAGS:
        raise _fail(
            walk, node, f"tag {node.tag!r} is not supported", "remove the tag; write a plain value"
        )
    try:
        return walk.loader.construct_object(node, deep=True)
    except (yaml.YAMLError, ValueError, OverflowError) as exc:
        problem = (getattr(exc, "problem", None) or str(exc).splitlines()[0])[:60]
        raise _fail(
            walk,
            node,
            f"value {node.value[:20]!r} cannot be read: {problem}",
            "write a plain value",
        ) from None
