"""The one reader of `[tool.archlock.*]` in pyproject.toml.

Every setting is declared here as data: its section, name, type, default, environment override
and help. `read()` reads one section into its frozen dataclass (`Render`, `Build`, ...) in a
fixed precedence: environment > pyproject.toml > default; `given()` lays command-line values
over it, so the command line wins. `Settings` holds a project's sections, each read once, when
a verb first asks for it (`Project.settings`). An unknown key is an error with a did-you-mean; a
value of the wrong type is an error naming pyproject.toml, the key and what to write instead.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, ClassVar, Generic, TypeVar

from archlock.errors import ConfigError

# kinds of value: what a key holds, how a message describes it, and an example to write
KINDS: dict[str, tuple[str, str]] = {
    "str": ("a string", '"text"'),
    "bool": ("true or false", "true"),
    "int": ("a whole number", "60"),
    "number": ("a number", "1e-4"),
    "list[str]": ("a list of strings", '["name"]'),
    "table[str]": ("a table of strings", '{ key = "value" }'),
    "table[list[str]]": ("a table of string lists", '{ key = ["a", "b"] }'),
    "table": ("a table", "[section] with keys under it"),
    "groups": (
        "a table of lists of requirements",
        'name = ["pkg>=1", { include-group = "other" }]',
    ),
}

# the standard pyproject.toml tables archlock reads, and what each must hold when present
STANDARD: dict[tuple[str, ...], str] = {
    ("project",): "table",
    ("project", "name"): "str",
    ("project", "requires-python"): "str",
    ("project", "dependencies"): "list[str]",
    ("project", "optional-dependencies"): "table[list[str]]",
    ("dependency-groups",): "groups",
    ("tool",): "table",
    ("tool", "uv"): "table",
    ("tool", "uv", "environments"): "list[str]",
    ("tool", "uv", "required-environments"): "list[str]",
    ("tool", "archlock"): "table",
}


@dataclass(frozen=True)
class Key:
    name: str
    kind: str
    default: Any
    help: str
    env: str | None = None  # environment variable that overrides pyproject.toml


def _keys(*keys: Key) -> dict[str, Key]:
    return {key.name: key for key in keys}


SECTIONS: dict[str, dict[str, Key]] = {
    "": _keys(
        Key("groups", "list[str]", [], "dependency groups the envs lock"),
        Key("extras", "list[str]", [], "optional-dependency extras the envs lock"),
        Key("indexes", "table[str]", {}, "named package indexes: name = URL or local folder"),
    ),
    "render": _keys(
        Key("image", "str", None, "image name, e.g. team/app (default: the project's name)"),
        Key("uv-image", "str", None, "the image uv is copied from", env="ARCHLOCK_UV_IMAGE"),
        Key("registry", "str", "", 'registry prefix ending in "/"', env="ARCHLOCK_REGISTRY_PREFIX"),
        Key("workflow-dir", "str", ".github/workflows", "where the CI workflow is rendered"),
        Key("runners", "table[str]", {}, "CI runner label per docker platform"),
        Key("builder-nodes", "table[str]", {}, "buildx node per docker platform"),
    ),
    "build": _keys(
        Key(
            "ca-bundle",
            "str",
            None,
            "CA bundle given to builds as a secret",
            env="ARCHLOCK_CA_BUNDLE",
        ),
        Key("network", "str", None, "build network mode, e.g. host", env="ARCHLOCK_BUILD_NETWORK"),
        Key(
            "timeout", "int", 5400, "seconds one image build may take", env="ARCHLOCK_BUILD_TIMEOUT"
        ),
    ),
    "verify": _keys(
        Key(
            "run",
            "list[str]",
            [],
            "the project's own commands, run in every env (host venv and image)",
        ),
        Key("metric", "str", None, 'regex whose group 1 is a number, e.g. "loss ([0-9.]+)"'),
        Key("tolerance", "number", 1e-3, "largest relative metric difference between envs"),
        Key("timeout", "number", 900, "seconds each run may take", env="ARCHLOCK_VERIFY_TIMEOUT"),
    ),
    "ci": _keys(
        Key(
            "runners",
            "table[list[str]]",
            {},
            "runner labels per env for its verify job, e.g. a GPU or a real Apple Silicon runner",
        ),
        Key(
            "build-runners",
            "table[list[str]]",
            {},
            "runner labels per env for its image build, e.g. a larger runner for a heavy env",
        ),
        Key(
            "registry-username-secret",
            "str",
            None,
            "name of the repository secret holding the registry user (default: the GitHub actor)",
        ),
        Key(
            "registry-password-secret",
            "str",
            None,
            "name of the repository secret holding the registry password or token"
            " (default: GITHUB_TOKEN, for GHCR)",
        ),
    ),
    "scan": _keys(
        Key("disable", "list[str]", [], "rules off everywhere"),
        Key("per-path", "table[list[str]]", {}, "rules off for paths matching a glob"),
        Key("exclude", "list[str]", [], "paths not scanned"),
        Key("fail-on", "str", None, "lowest severity that fails the scan"),
    ),
}


def table_name(section: str) -> str:
    return "[tool.archlock]" if not section else f"[tool.archlock.{section}]"


def suggest(word: str, choices: Iterable[str]) -> str:
    """`did you mean 'x'?`, or the list of choices when nothing is close."""
    choices = list(choices)
    close = difflib.get_close_matches(word, choices, n=1)
    return f"did you mean {close[0]!r}?" if close else f"known: {', '.join(choices) or 'none'}"


def shown_key(key: str) -> str:
    """A key as an error line shows it: quoted when it holds a line break or control character,
    so the message stays one line."""
    return key if key.isprintable() else repr(key)


def _is(kind: str, value: Any) -> bool:
    if kind == "table":
        return isinstance(value, dict)
    if kind == "groups":
        return isinstance(value, dict) and all(_is_group(v) for v in value.values())
    if kind == "str":
        return isinstance(value, str)
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind == "list[str]":
        return isinstance(value, list) and all(isinstance(item, str) for item in value)
    inner = kind[len("table[") : -1]
    return isinstance(value, dict) and all(
        isinstance(k, str) and _is(inner, v) for k, v in value.items()
    )


def _is_group(items: Any) -> bool:
    def fits(item: Any) -> bool:
        if isinstance(item, dict):
            return set(item) == {"include-group"} and isinstance(item["include-group"], str)
        return isinstance(item, str)

    return isinstance(items, list) and all(fits(item) for item in items)


def check_standard(pyproject: Mapping[str, Any] | None, where: Path) -> None:
    """The standard tables archlock reads hold what their specifications say (else one line)."""
    for keys, kind in STANDARD.items():
        value: Any = pyproject or {}
        for key in keys:
            value = value.get(key) if isinstance(value, dict) else None
        if value is not None and not _is(kind, value):
            description, example = KINDS[kind]
            dotted = ".".join(keys)
            fix = f"write [{dotted}]" if kind == "table" else f"write {keys[-1]} = {example}"
            raise ConfigError(f"{where}: {dotted}: must be {description}", fix=fix)


def _from_env(key: Key, text: str, where: str) -> Any:
    if key.kind == "str":
        return text
    if key.kind == "bool" and text.lower() in ("1", "true", "yes", "0", "false", "no"):
        return text.lower() in ("1", "true", "yes")
    if key.kind in ("int", "number"):
        try:
            return int(text) if key.kind == "int" else float(text)
        except ValueError:
            pass
    raise ConfigError(
        f"${key.env}: {text!r} is not {KINDS[key.kind][0]}",
        fix=f"set {key.env} to {KINDS[key.kind][0]}",
    )


def raw_table(pyproject: Mapping[str, Any] | None, where: Path) -> dict[str, Any]:
    """`[tool.archlock]` as a table, once the standard tables are checked to be what they say."""
    check_standard(pyproject, where)
    return dict((pyproject or {}).get("tool", {}).get("archlock", {}))


def check_top_level(table: Mapping[str, Any], where: Path) -> None:
    """Every key of `[tool.archlock]` is a known setting or a known section."""
    known = [*SECTIONS[""], *(name for name in SECTIONS if name)]
    for key, value in table.items():
        if key not in known:
            raise ConfigError(
                f"{where}: [tool.archlock] {shown_key(key)}: unknown key", fix=suggest(key, known)
            )
        if key in SECTIONS and not isinstance(value, dict):
            raise ConfigError(
                f"{where}: [tool.archlock] {key}: must be a table",
                fix=f"write a {table_name(key)} section",
            )


def _wrong_kind(where: Path, label: str, name: str, kind: str, value: Any) -> ConfigError:
    """The error for a value of the wrong kind; in a table, it names the wrong entry too."""
    description, example = KINDS[kind]
    message = f"{where}: {label} {name}: must be {description}"
    if kind.startswith("table[") and isinstance(value, dict):
        inner = kind[len("table[") : -1]
        bad = next((entry for entry, item in value.items() if not _is(inner, item)), None)
        if bad is not None:
            what, sample = KINDS[inner]
            fix = f'write {name} = {{ "{shown_key(bad)}" = {sample} }}'
            return ConfigError(f"{message}; {name}.{shown_key(bad)} is not {what}", fix=fix)
    return ConfigError(message, fix=f"write {name} = {example}")


def _values(
    table: Mapping[str, Any],
    section: str,
    where: Path,
    *,
    environ: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """One section's values by key name, every key present: environment > file > default."""
    keys = SECTIONS[section]
    raw = table if not section else table.get(section, {})
    label = table_name(section)
    for name, value in raw.items():
        if not section and name in SECTIONS:
            continue  # a sub-section, read on its own
        if name not in keys:
            raise ConfigError(
                f"{where}: {label} {shown_key(name)}: unknown key", fix=suggest(name, keys)
            )
        kind = keys[name].kind
        if not _is(kind, value):
            raise _wrong_kind(where, label, name, kind, value)
    environ = os.environ if environ is None else environ
    values = {}
    for name, key in keys.items():
        if key.env and environ.get(key.env):
            values[name] = _from_env(key, environ[key.env], label)
        else:
            values[name] = raw.get(name, key.default)
    return values


# -- the sections, typed: one frozen dataclass each, its fields the section's keys ---------------
@dataclass(frozen=True)
class Section:
    SECTION: ClassVar[str]


@dataclass(frozen=True)
class Top(Section):
    SECTION: ClassVar[str] = ""
    groups: tuple[str, ...]
    extras: tuple[str, ...]
    indexes: Mapping[str, str]


@dataclass(frozen=True)
class Render(Section):
    SECTION: ClassVar[str] = "render"
    image: str | None
    uv_image: str | None
    registry: str
    workflow_dir: str
    runners: Mapping[str, str]
    builder_nodes: Mapping[str, str]


@dataclass(frozen=True)
class Build(Section):
    SECTION: ClassVar[str] = "build"
    ca_bundle: str | Path | None
    network: str | None
    timeout: int


@dataclass(frozen=True)
class Verify(Section):
    SECTION: ClassVar[str] = "verify"
    run: tuple[str, ...]
    metric: str | None
    tolerance: float
    timeout: float


@dataclass(frozen=True)
class Ci(Section):
    SECTION: ClassVar[str] = "ci"
    runners: Mapping[str, tuple[str, ...]]
    build_runners: Mapping[str, tuple[str, ...]]
    registry_username_secret: str | None
    registry_password_secret: str | None


@dataclass(frozen=True)
class Scan(Section):
    SECTION: ClassVar[str] = "scan"
    disable: tuple[str, ...]
    per_path: Mapping[str, tuple[str, ...]]
    exclude: tuple[str, ...]
    fail_on: str | None


TYPES: tuple[type[Section], ...] = (Top, Render, Build, Verify, Ci, Scan)
S = TypeVar("S", bound=Section)


def field_name(key: str) -> str:
    """`uv-image` -> `uv_image`: a key as its dataclass names it."""
    return key.replace("-", "_")


def _frozen(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_frozen(item) for item in value)
    if isinstance(value, dict):
        return {name: _frozen(item) for name, item in value.items()}
    return value


def read(
    table: Mapping[str, Any],
    kind: type[S],
    where: Path,
    *,
    environ: Mapping[str, str] | None = None,
) -> S:
    """One section, checked and typed: environment > pyproject.toml > default."""
    values = _values(table, kind.SECTION, where, environ=environ)
    return kind(**{field_name(name): _frozen(value) for name, value in values.items()})


def given(section: S, **cli: Any) -> S:
    """`section` with the command line's values over it (an option left out is None)."""
    return replace(section, **{name: value for name, value in cli.items() if value is not None})


class _Once(Generic[S]):
    """A section of `Settings`: read on first access, then kept on the instance."""

    def __init__(self, kind: type[S]) -> None:
        self.kind = kind

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, settings: Settings, owner: type | None = None) -> S:
        value = read(settings.table, self.kind, settings.where)
        settings.__dict__[self.name] = value  # found first from now on: read once
        return value


class Settings:
    """One project's `[tool.archlock.*]`: each section read and checked once, when first asked
    for (a verb that never reads a section never fails on it), then shared by every verb."""

    top = _Once(Top)
    render = _Once(Render)
    build = _Once(Build)
    verify = _Once(Verify)
    ci = _Once(Ci)
    scan = _Once(Scan)

    def __init__(self, table: Mapping[str, Any], where: Path) -> None:
        self.table = table
        self.where = where
