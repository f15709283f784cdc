"""A managed project: this repository or any other (`--project PATH`).

A project is either a pyproject.toml project (uv locks it as it is) or a project with only a
requirements.txt (archlock locks it through a generated stand-in pyproject). Its targets are
`envs/*.yaml`; a project without that folder gets archlock's shipped default envs.
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from dataclasses import dataclass, field
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Any

from archlock.core import settings as settings_table
from archlock.core.fsutil import read_input
from archlock.core.spec import EnvSpec, load_spec
from archlock.core.text import has_control
from archlock.core.tomlsrc import load_toml
from archlock.errors import ConfigError

# PEP 508, checked loosely: name, extras, then versions or `@ URL`, then `; marker`
_NAME = r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?"
_VERSION = r"(?:~=|===|==|!=|<=|>=|<|>)\s*[A-Za-z0-9_.*+!-]+"
_VERSIONS = rf"\(?\s*{_VERSION}(?:\s*,\s*{_VERSION})*\s*\)?"
REQUIREMENT_RE = re.compile(
    rf"\s*{_NAME}\s*(?:\[\s*(?:{_NAME}(?:\s*,\s*{_NAME})*)?\s*\])?\s*"
    rf"(?:@\s*[A-Za-z][A-Za-z0-9+.-]*:\S+(?:\s+|$)|{_VERSIONS})?\s*(?:;\s*\S.*)?"
)


def default_envs_dir() -> Path:
    return Path(str(resources.files("archlock") / "data" / "envs"))


def find_root(start: Path) -> Path:
    """The project a command run in `start` acts on, looking upward as git and uv do: the nearest
    folder with an `envs/` folder or a pyproject.toml holding [tool.archlock]; failing that (a
    project archlock has not set up yet, such as one `archlock init` is about to), the nearest
    with a pyproject.toml or a requirements.txt; failing that, `start` itself. The search stops
    at a repository's root (a folder holding `.git`)."""
    start = start.resolve()
    folders: list[Path] = []
    for folder in (start, *start.parents):
        folders.append(folder)
        if (folder / ".git").exists():
            break
    for folder in folders:
        if (folder / "envs").is_dir() or _has_archlock_table(folder / "pyproject.toml"):
            return folder
    for folder in folders:
        if (folder / "pyproject.toml").is_file() or (folder / "requirements.txt").is_file():
            return folder
    return start


def _has_archlock_table(path: Path) -> bool:
    """Whether pyproject.toml sets [tool.archlock]. One that does not parse counts when it names
    that table in its text: the verb reading it then reports what is wrong, in the right file."""
    try:
        text = path.read_text(encoding="utf-8") if path.is_file() else ""
        return isinstance(tomllib.loads(text).get("tool", {}).get("archlock"), dict)
    except (OSError, UnicodeDecodeError, AttributeError):
        return False
    except tomllib.TOMLDecodeError:
        return re.search(r"^\s*\[\s*tool\s*\.\s*archlock\b", text, re.MULTILINE) is not None


def index_env_var(name: str) -> str:
    """`pytorch-cpu` -> `ARCHLOCK_INDEX_PYTORCH_CPU`: the override for that index's URL."""
    return "ARCHLOCK_INDEX_" + re.sub(r"[^A-Z0-9]", "_", name.upper())


@dataclass(frozen=True)
class Index:
    name: str
    url: str  # a URL or an absolute local path
    canonical: str | None  # the configured URL when `url` is a mirror override
    origin: str  # where the URL came from, for messages

    @property
    def is_flat_folder(self) -> bool:
        return not re.match(r"^[a-z][a-z0-9+.-]*://", self.url) or self.url.startswith("file://")

    @property
    def is_mirror(self) -> bool:
        return self.canonical != self.url


@dataclass(frozen=True)
class Project:
    root: Path
    pyproject: dict[str, Any] | None
    table: dict[str, Any] = field(default_factory=dict)  # [tool.archlock] as written

    @classmethod
    def load(cls, root: Path) -> Project:
        root = root.resolve()
        if not root.is_dir():
            raise ConfigError(
                f"{root}: project folder does not exist",
                fix="pass --project PATH to a project folder",
            )
        pyproject_path = root / "pyproject.toml"
        pyproject = None
        if os.path.lexists(pyproject_path):
            pyproject = load_toml(pyproject_path, what="pyproject.toml")
        elif not (root / "requirements.txt").is_file():
            raise ConfigError(
                f"{root}: neither pyproject.toml nor requirements.txt found",
                fix="run archlock in a project folder or pass --project PATH",
            )
        table = settings_table.raw_table(pyproject, pyproject_path)
        project = cls(root=root, pyproject=pyproject, table=table)
        project._check_settings()
        return project

    # -- what kind of project --------------------------------------------------------------
    @property
    def kind(self) -> str:
        return (
            "pyproject"
            if self.pyproject is not None and "project" in self.pyproject
            else "requirements"
        )

    @property
    def name(self) -> str:
        if self.kind == "pyproject":
            return str(self.pyproject["project"].get("name", self.root.name))  # type: ignore[index]
        return re.sub(r"[^a-z0-9-]", "-", self.root.name.lower()).strip("-") or "project"

    @property
    def requires_python(self) -> str:
        if self.kind == "pyproject":
            return str(self.pyproject["project"].get("requires-python", ">=3.8"))  # type: ignore[index]
        return ">=3.8"

    # -- paths -------------------------------------------------------------------------------
    @property
    def envs_dir(self) -> Path:
        return self.root / "envs"

    @property
    def locks_dir(self) -> Path:
        return self.envs_dir / "locks"

    @property
    def uv_lock(self) -> Path:
        return self.root / "uv.lock"

    def env_lock(self, name: str) -> Path:
        return self.locks_dir / f"{name}.txt"

    def env_pylock(self, name: str) -> Path:
        return self.locks_dir / f"pylock.{name}.toml"

    # -- envs --------------------------------------------------------------------------------
    @cached_property
    def spec_paths(self) -> list[Path]:
        own = sorted(self.envs_dir.glob("*.yaml")) if self.envs_dir.is_dir() else []
        return own or sorted(default_envs_dir().glob("*.yaml"))

    def all_envs(self) -> list[EnvSpec]:
        return [load_spec(path) for path in self.spec_paths]

    def envs(self, names: list[str] | None = None) -> list[EnvSpec]:
        """Envs to act on: the named ones, else every env that is not opt-in or already locked."""
        everything = self.all_envs()
        if not names:
            return [e for e in everything if not e.opt_in or self.env_lock(e.name).exists()]
        by_name = {env.name: env for env in everything}
        chosen = []
        for name in names:
            if name not in by_name:
                close = difflib.get_close_matches(name, list(by_name), n=1)
                hint = (
                    f"did you mean {close[0]!r}?" if close else f"known envs: {', '.join(by_name)}"
                )
                raise ConfigError(f"--env {name}: no such env in {self.envs_dir}", fix=hint)
            chosen.append(by_name[name])
        return chosen

    # -- settings ----------------------------------------------------------------------------
    @cached_property
    def settings(self) -> settings_table.Settings:
        """[tool.archlock.*], typed; each section read once, for every verb that asks."""
        return settings_table.Settings(self.table, self.root / "pyproject.toml")

    # -- what the envs lock ------------------------------------------------------------------
    @property
    def groups(self) -> list[str]:
        return list(self.settings.top.groups)

    @property
    def extras(self) -> list[str]:
        return list(self.settings.top.extras)

    def direct_requirements(self) -> list[str]:
        """The project's own requirement lines (dependencies + configured extras and groups)."""
        if self.kind == "requirements":
            return _read_requirements(self.root / "requirements.txt")
        project = self.pyproject["project"]  # type: ignore[index]
        where = self.root / "pyproject.toml"
        lines = [
            _requirement(line, f"{where}: project.dependencies")
            for line in project.get("dependencies", [])
        ]
        optional = project.get("optional-dependencies", {})
        for extra in self.extras:
            if extra not in optional:
                raise ConfigError(
                    f"{where}: [tool.archlock] extras: no extra {extra!r}",
                    fix="add it under [project.optional-dependencies] or remove it",
                )
            lines += [_requirement(line, f"{where}: extra {extra}") for line in optional[extra]]
        for group in self.groups:
            groups = self.pyproject.get("dependency-groups", {})  # type: ignore[union-attr]
            lines += [
                _requirement(line, f"{where}: group {group}")
                for line in _expand_group(groups, group)
            ]
        return lines

    # -- indexes -----------------------------------------------------------------------------
    def index(self, name: str, spec: EnvSpec) -> Index:
        configured = self.settings.top.indexes.get(name)
        var = index_env_var(name)
        override = os.environ.get(var)
        if override:
            return Index(name, _normalise_location(override), configured, f"${var}")
        if configured:
            return Index(
                name,
                configured,
                configured,
                f"{self.root / 'pyproject.toml'} [tool.archlock.indexes]",
            )
        raise ConfigError(
            f"{spec.path}: torch.index: index {name!r} has no URL",
            fix=f'set {var}=URL-or-folder, or add `{name} = "URL"` '
            "under [tool.archlock.indexes] in pyproject.toml",
        )

    def _check_settings(self) -> None:
        where = self.root / "pyproject.toml"
        settings_table.check_top_level(self.table, where)
        groups = (self.pyproject or {}).get("dependency-groups", {})
        for group in self.settings.top.groups:
            if not isinstance(groups, dict) or group not in groups:
                raise ConfigError(
                    f"{where}: [tool.archlock] groups: no dependency group {group!r}",
                    fix="add it under [dependency-groups] or remove it",
                )


def _normalise_location(value: str) -> str:
    if re.match(r"^[a-z][a-z0-9+.-]*://", value):
        return value.rstrip("/")
    return str(Path(value).expanduser().resolve())


def _read_requirements(path: Path) -> list[str]:
    if not os.path.lexists(path):
        raise ConfigError(
            f"{path.parent}: pyproject.toml has no [project] table "
            "and there is no requirements.txt",
            fix="add a [project] table with dependencies, or a requirements.txt",
        )
    lines = []
    text = read_input(path, what="requirements file", fix="keep one requirement per line, UTF-8")
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("-"):
            raise ConfigError(
                f"{path}:{number}: option lines such as {line.split()[0]!r} are not supported",
                fix="keep only requirement lines; name indexes in the env spec (torch.index)",
            )
        lines.append(_requirement(line, f"{path}:{number}"))
    return lines


def _requirement(line: str, where: str) -> str:
    """`line` when it is one PEP 508 requirement, else a ConfigError naming where it is."""
    if has_control(line):
        raise ConfigError(f"{where}: {line[:60]!r} holds a control character", fix="remove it")
    if not REQUIREMENT_RE.fullmatch(line):
        raise ConfigError(
            f"{where}: {line[:60]!r} is not a requirement (PEP 508)",
            fix="write one requirement per line, e.g. torch==2.10.0, numpy>=1.26 or name @ URL",
        )
    return line


def _expand_group(groups: dict[str, Any], name: str, seen: tuple[str, ...] = ()) -> list[str]:
    out: list[str] = []
    for item in groups.get(name, []):
        if isinstance(item, dict) and "include-group" in item:
            if item["include-group"] not in seen:
                out += _expand_group(groups, item["include-group"], (*seen, name))
        else:
            out.append(item)
    return out
