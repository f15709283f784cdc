"""Read a buildx bake file (the HCL subset archlock renders) without buildx.

When buildx is missing, `archlock build` still takes targets, tags, platforms and args from the
bake file, so that file stays the one source of truth. Supported: `variable`, `group` and
`target` blocks; strings with `${VAR}` interpolation (`$${` escapes), lists, maps, booleans,
numbers, bare variable references; `inherits` (maps merge, other keys override); variables
overridden by environment variables of the same name, as bake does. Anything else is a
ConfigError naming the line, never a silent misreading.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from archlock.errors import ConfigError

_TOKEN_RE = re.compile(
    r"""
    (?P<ws>[ \t\r]+)
  | (?P<nl>\n)
  | (?P<comment>\#[^\n]*|//[^\n]*|/\*.*?\*/)
  | (?P<string>"(?:[^"\\\n]|\\.)*")
  | (?P<number>-?[0-9]+(?:\.[0-9]+)?)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_-]*)
  | (?P<punct>[{}\[\]=,:])
    """,
    re.VERBOSE | re.DOTALL,
)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\"}
_INTERP_RE = re.compile(r"\$\$\{|%%\{|\$\{([^}]*)\}")
LIST_KEYS = ("platforms", "tags", "cache-from", "cache-to", "output", "attest", "secret", "inherits", "targets")


@dataclass
class Token:
    kind: str
    text: str
    line: int


@dataclass(frozen=True)
class BakeTarget:
    name: str
    context: str = "."
    dockerfile: str = "Dockerfile"
    platforms: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    args: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    output: tuple[str, ...] = ()
    attest: tuple[str, ...] = ()
    cache_from: tuple[str, ...] = ()
    cache_to: tuple[str, ...] = ()
    secret: tuple[str, ...] = ()
    target: str | None = None
    no_cache: bool = False


@dataclass
class BakeFile:
    path: Path
    variables: dict[str, Any]
    groups: dict[str, list[str]]
    raw_targets: dict[str, dict[str, Any]]
    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))

    def variable(self, name: str, seen: tuple[str, ...] = ()) -> str:
        if name in seen:
            raise ConfigError(f"{self.path}: variable {name} refers to itself", fix="break the cycle")
        if name not in self.variables:
            raise ConfigError(f"{self.path}: unknown variable ${{{name}}}", fix=f'declare variable "{name}"')
        if name in self.env:
            return self.env[name]
        return _stringify(self._resolve(self.variables[name], (*seen, name)))

    def _resolve(self, value: Any, seen: tuple[str, ...] = ()) -> Any:
        if isinstance(value, _Template):
            return value.render(lambda n: self.variable(n, seen))
        if isinstance(value, _Ref):
            return self.variable(value.name, seen)
        if isinstance(value, list):
            return [self._resolve(v, seen) for v in value]
        if isinstance(value, dict):
            return {k: self._resolve(v, seen) for k, v in value.items()}
        return value

    def targets_of(self, name: str, seen: tuple[str, ...] = ()) -> list[str]:
        """Expand a group (recursively) or a target name into target names, in order."""
        if name in self.raw_targets and name not in self.groups:
            return [name]
        if name not in self.groups:
            known = ", ".join([*self.groups, *self.raw_targets])
            raise ConfigError(f"{self.path}: no target or group {name!r}", fix=f"known: {known}")
        if name in seen:
            raise ConfigError(f"{self.path}: group {name} includes itself", fix="break the cycle")
        out: list[str] = []
        for member in self.groups[name]:
            out += [t for t in self.targets_of(member, (*seen, name)) if t not in out]
        return out

    def target(self, name: str) -> BakeTarget:
        merged = self._merged(name, ())
        values = self._resolve(merged)
        return _to_target(self.path, name, values)

    def _merged(self, name: str, seen: tuple[str, ...]) -> dict[str, Any]:
        if name not in self.raw_targets:
            raise ConfigError(f"{self.path}: target {name!r} not found", fix="check inherits / the target name")
        if name in seen:
            raise ConfigError(f"{self.path}: target {name} inherits itself", fix="break the cycle")
        raw = self.raw_targets[name]
        merged: dict[str, Any] = {}
        for parent in self._resolve(raw.get("inherits", [])):
            _merge(merged, self._merged(parent, (*seen, name)))
        _merge(merged, {k: v for k, v in raw.items() if k != "inherits"})
        return merged


def _merge(into: dict[str, Any], new: dict[str, Any]) -> None:
    for key, value in new.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            into[key] = {**into[key], **value}
        else:
            into[key] = value


def _stringify(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def _to_target(path: Path, name: str, values: dict[str, Any]) -> BakeTarget:
    def strings(key: str) -> tuple[str, ...]:
        value = values.get(key, [])
        if isinstance(value, str):
            value = [value]
        return tuple(_stringify(v) for v in value if _stringify(v) != "")

    def mapping(key: str) -> dict[str, str]:
        value = values.get(key, {})
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: target {name}: {key} must be a map", fix=f"write {key} = {{ KEY = \"value\" }}")
        return {k: _stringify(v) for k, v in value.items() if v is not None}

    return BakeTarget(
        name=name,
        context=_stringify(values.get("context", ".")),
        dockerfile=_stringify(values.get("dockerfile", "Dockerfile")),
        platforms=strings("platforms"),
        tags=strings("tags"),
        args=mapping("args"),
        labels=mapping("labels"),
        output=strings("output"),
        attest=strings("attest"),
        cache_from=strings("cache-from"),
        cache_to=strings("cache-to"),
        secret=strings("secret"),
        target=values.get("target"),
        no_cache=bool(values.get("no-cache", False)),
    )


# -- values that stay symbolic until a variable's value is known -------------------------------
@dataclass(frozen=True)
class _Ref:
    name: str


@dataclass(frozen=True)
class _Template:
    parts: tuple[str | _Ref, ...]

    def render(self, lookup: Any) -> str:
        return "".join(p if isinstance(p, str) else lookup(p.name) for p in self.parts)


# -- parsing ------------------------------------------------------------------------------------
def load(path: Path, env: Mapping[str, str] | None = None) -> BakeFile:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: bake file missing", fix="run archlock render") from None
    return parse(text, path, env)


def parse(text: str, path: Path, env: Mapping[str, str] | None = None) -> BakeFile:
    parser = _Parser(_tokenize(text, path), path)
    variables: dict[str, Any] = {}
    groups: dict[str, list[str]] = {}
    targets: dict[str, dict[str, Any]] = {}
    for kind, label, body, line in parser.blocks():
        if kind == "variable":
            variables[label] = body.get("default", "")
        elif kind == "group":
            groups[label] = [_literal(path, line, t) for t in body.get("targets", [])]
        elif kind == "target":
            targets[label] = body
        else:
            raise ConfigError(f"{path}:{line}: block {kind!r} is outside what archlock reads", fix="use variable, group and target blocks")
    return BakeFile(path, variables, groups, targets, dict(os.environ) if env is None else env)


def _literal(path: Path, line: int, value: Any) -> str:
    if isinstance(value, str):
        return value
    raise ConfigError(f"{path}:{line}: group targets must be plain strings", fix='write targets = ["name"]')


def _tokenize(text: str, path: Path) -> list[Token]:
    tokens, pos, line = [], 0, 1
    while pos < len(text):
        match = _TOKEN_RE.match(text, pos)
        if not match:
            raise ConfigError(f"{path}:{line}: cannot read {text[pos:pos + 20]!r}", fix="keep to the bake syntax archlock renders")
        kind = match.lastgroup or ""
        if kind not in ("ws", "comment"):
            tokens.append(Token(kind, match.group(), line))
        line += match.group().count("\n")
        pos = match.end()
    tokens.append(Token("eof", "", line))
    return tokens


class _Parser:
    def __init__(self, tokens: list[Token], path: Path) -> None:
        self.tokens = tokens
        self.pos = 0
        self.path = path

    def peek(self) -> Token:
        return self.tokens[self.pos]

    def take(self, kind: str, text: str | None = None) -> Token:
        token = self.tokens[self.pos]
        if token.kind != kind or (text is not None and token.text != text):
            want = text or kind
            raise ConfigError(f"{self.path}:{token.line}: expected {want}, found {token.text or token.kind!r}", fix="correct the bake file")
        self.pos += 1
        return token

    def skip_newlines(self) -> None:
        while self.peek().kind == "nl":
            self.pos += 1

    def blocks(self) -> list[tuple[str, str, dict[str, Any], int]]:
        out = []
        self.skip_newlines()
        while self.peek().kind != "eof":
            kind = self.take("ident")
            label = _unquote(self.take("string").text, self.path, kind.line)
            if not isinstance(label, str):
                raise ConfigError(f"{self.path}:{kind.line}: block labels are plain strings", fix="remove ${...}")
            out.append((kind.text, label, self.body(), kind.line))
            self.skip_newlines()
        return out

    def body(self) -> dict[str, Any]:
        self.take("punct", "{")
        body: dict[str, Any] = {}
        self.skip_newlines()
        while not (self.peek().kind == "punct" and self.peek().text == "}"):
            key = self.take("ident")
            self.take("punct", "=")
            body[key.text] = self.value()
            self.skip_newlines()
        self.take("punct", "}")
        return body

    def value(self) -> Any:
        token = self.peek()
        self.pos += 1
        if token.kind == "string":
            return _unquote(token.text, self.path, token.line)
        if token.kind == "number":
            return float(token.text) if "." in token.text else int(token.text)
        if token.kind == "ident":
            return {"true": True, "false": False, "null": None}.get(token.text, _Ref(token.text))
        if token.kind == "punct" and token.text == "[":
            return self.sequence()
        if token.kind == "punct" and token.text == "{":
            self.pos -= 1
            return self.mapping()
        raise ConfigError(f"{self.path}:{token.line}: unexpected {token.text!r}", fix="correct the bake file")

    def sequence(self) -> list[Any]:
        items = []
        self.skip_newlines()
        while not (self.peek().kind == "punct" and self.peek().text == "]"):
            items.append(self.value())
            self.skip_newlines()
            if self.peek().text == ",":
                self.pos += 1
                self.skip_newlines()
        self.take("punct", "]")
        return items

    def mapping(self) -> dict[str, Any]:
        self.take("punct", "{")
        items: dict[str, Any] = {}
        self.skip_newlines()
        while not (self.peek().kind == "punct" and self.peek().text == "}"):
            key_token = self.peek()
            self.pos += 1
            key = key_token.text if key_token.kind == "ident" else _unquote(key_token.text, self.path, key_token.line)
            if key_token.kind not in ("ident", "string") or not isinstance(key, str):
                raise ConfigError(f"{self.path}:{key_token.line}: map keys are names or plain strings", fix="correct the bake file")
            if self.peek().text not in ("=", ":"):
                raise ConfigError(f"{self.path}:{key_token.line}: expected = after {key}", fix="correct the bake file")
            self.pos += 1
            items[key] = self.value()
            self.skip_newlines()
            if self.peek().text == ",":
                self.pos += 1
                self.skip_newlines()
        self.take("punct", "}")
        return items


def _unquote(literal: str, path: Path, line: int) -> str | _Template:
    body = literal[1:-1]
    text = re.sub(r"\\(.)", lambda m: _escape(m.group(1), path, line), body)
    parts: list[str | _Ref] = []
    pos = 0
    for match in _INTERP_RE.finditer(text):
        parts.append(text[pos:match.start()])
        if match.group() == "$${":
            parts.append("${")
        elif match.group() == "%%{":
            parts.append("%{")
        else:
            name = match.group(1).strip()
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", name):
                raise ConfigError(f"{path}:{line}: interpolation ${{{name}}} is outside what archlock reads", fix="use ${VARIABLE} only")
            parts.append(_Ref(name))
        pos = match.end()
    parts.append(text[pos:])
    parts = [p for p in parts if p != ""]
    if all(isinstance(p, str) for p in parts):
        return "".join(parts)  # type: ignore[arg-type]
    return _Template(tuple(parts))


def _escape(char: str, path: Path, line: int) -> str:
    if char not in _ESCAPES:
        raise ConfigError(f"{path}:{line}: escape \\{char} is outside what archlock reads", fix="use \\\" \\\\ \\n or \\t")
    return _ESCAPES[char]
