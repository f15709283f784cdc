"""Env specs: `envs/<name>.yaml`, one target machine each, validated strictly.

A spec names the platform (a row of `archlock.core.platforms.PLATFORMS`), the Python version, the
accelerator, where torch comes from, the base image (Linux) and what verify must expect.
The accepted keys are the table `SCHEMA` below; the shipped JSON Schema
(`archlock/data/env.schema.json`) is generated from the same table (`archlock schema`).
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from archlock.core.platforms import (
    ACCELERATOR_TABLE,
    ACCELERATORS,
    PLATFORMS,
    Accelerator,
    Platform,
)
from archlock.core.yamlsrc import Located, load_located
from archlock.errors import ConfigError

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
INDEX_NAME_RE = r"^[a-z0-9][a-z0-9-]*$"
# An OCI image reference without a digest: [host[:port]/]path[:tag]. Nothing else gets through,
# so a value from a spec can never carry quotes, spaces, newlines or `$(...)` into a Dockerfile.
IMAGE_RE = (
    r"^(?:[a-z0-9]+(?:[.-][a-z0-9]+)*(?::[0-9]{1,5})?/)?"
    r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?$"
)


@dataclass(frozen=True)
class Key:
    """One accepted key: its type, allowed values or pattern, and a line of documentation."""

    type: type
    doc: str
    required: bool = False
    choices: tuple[str, ...] = ()
    pattern: str | None = None  # for a list: the pattern of every item
    example: str | None = None
    deprecated: str | None = None  # accepted and ignored; the note says what replaced it


Section = dict[str, "Key | Section"]

SCHEMA: Section = {
    "description": Key(str, "free text shown in reports"),
    "platform": Key(
        str, "target platform (a row of archlock's platform table)", True, tuple(PLATFORMS)
    ),
    "python": Key(
        str,
        'Python major.minor, quoted: "3.11"',
        True,
        pattern=r"^3\.[0-9]{1,2}$",
        example='"3.11"',
    ),
    "accelerator": Key(str, "the accelerator this env's torch build targets", True, ACCELERATORS),
    "opt-in": Key(bool, "lock this env only when named (--env) or once its lock exists"),
    "machines": Key(
        list,
        "machine profiles (envs/machines/<name>.json) the env must serve; "
        "lock checks the build runs there",
        pattern=NAME_RE.pattern,
        example="[gpu-a100]",
    ),
    "accept-cuda-stack": Key(
        bool, "cpu envs: accept a CUDA build of torch (and its nvidia-* wheels) in the lock"
    ),
    "macos": Key(
        str,
        "macOS only: the lowest macOS the lock targets",
        pattern=r"^[0-9]{2}\.[0-9]$",
        example='"14.0"',
    ),
    "torch": {
        "index": Key(
            str,
            'where torch comes from: "pypi" or a name from [tool.archlock.indexes]',
            pattern=INDEX_NAME_RE,
        ),
        "variant": Key(
            str,
            "local version label of the torch build on that index, e.g. cpu",
            pattern=r"^[a-z0-9]+$",
        ),
    },
    "expect": {
        "device": Key(
            str,
            "the device verify must train on when the hardware is present",
            choices=ACCELERATORS,
        ),
        "cuda": Key(
            str,
            "deprecated and ignored: the CUDA version comes from the lock",
            deprecated="the CUDA version torch is built with now comes from the lock "
            "(envs/locks/<env>.expect.json, written by `archlock lock`)",
        ),
    },
    "image": {
        "base": Key(
            str,
            "Linux only: base image reference (must provide python3 of the env's version)",
            pattern=IMAGE_RE,
        ),
        "digest": Key(str, "pin the base image: sha256:<64 hex>", pattern=r"^sha256:[0-9a-f]{64}$"),
        "toolchain": Key(
            bool, "install a C/C++ compiler so torch.compile runs in the image (default false)"
        ),
    },
    "verify": {
        "project-tests": Key(bool, "also run the project's own pytest suite inside the env"),
    },
}


@dataclass(frozen=True, kw_only=True)
class EnvSpec:
    name: str
    path: Path
    platform: Platform
    python: str
    accelerator: str
    torch_index: str | None  # None = PyPI
    torch_variant: str | None
    macos: str | None
    expect_device: str
    expect_cuda: str | None  # always None: `expect.cuda` is deprecated (see archlock.lock.expect)
    image_base: str | None
    image_digest: str | None
    opt_in: bool
    project_tests: bool
    description: str = ""
    image_toolchain: bool = (
        False  # gcc/g++ in the image: torch.compile (inductor) can build kernels
    )
    machines: tuple[str, ...] = ()
    accept_cuda_stack: bool = False
    notes: tuple[str, ...] = ()  # deprecated keys the spec still carries, one line each

    @property
    def image_ref(self) -> str | None:
        """The base image as a Dockerfile FROM value (digest-pinned when the spec pins it)."""
        if self.image_base is None:
            return None
        return f"{self.image_base}@{self.image_digest}" if self.image_digest else self.image_base

    @property
    def accelerator_facts(self) -> Accelerator:
        """The accelerator table's row for this env's `accelerator:`."""
        return ACCELERATOR_TABLE[self.accelerator]

    def identity(self) -> dict[str, Any]:
        """What the lock of this env depends on (hashed into the lock's input stamp)."""
        return {
            "platform": self.platform.name,
            "python": self.python,
            "torch_index": self.torch_index,
            "torch_variant": self.torch_variant,
            "macos": self.macos,
        }


def load_spec(path: Path) -> EnvSpec:
    name = path.stem
    if not NAME_RE.fullmatch(name):
        raise ConfigError(
            f"{path}: env name {name!r} is not allowed",
            fix="name the file with lowercase letters, digits and dashes, "
            "e.g. linux-arm64-cpu.yaml",
        )
    located = load_located(path)
    if not isinstance(located.data, dict):
        raise ConfigError(
            f"{path}:1: an env spec must be a mapping of keys", fix="see envs/README.md"
        )
    _check_section(located.data, SCHEMA, (), located, path)
    return _build(name, path, located)


def deprecation_notes(
    data: dict[str, Any], schema: Section, where: tuple[str, ...], src: Located, path: Path
) -> list[str]:
    """One line per deprecated key the spec still sets: file, line, key and what replaced it."""
    notes = []
    for key, value in data.items():
        rule = schema.get(key)
        if isinstance(rule, dict) and isinstance(value, dict):
            notes += deprecation_notes(value, rule, (*where, key), src, path)
        elif isinstance(rule, Key) and rule.deprecated:
            dotted = ".".join((*where, key))
            notes.append(
                f"{path}:{src.line(*where, key)}: {dotted} is deprecated and ignored: "
                f"{rule.deprecated}; remove it"
            )
    return notes


def _check_section(
    data: dict[str, Any], schema: Section, where: tuple[str, ...], src: Located, path: Path
) -> None:
    for key, value in data.items():
        rule = schema.get(key)
        if rule is None:
            _unknown_key(key, schema, where, src, path)
        elif isinstance(rule, dict):
            if not isinstance(value, dict):
                _fail(
                    path,
                    src,
                    (*where, key),
                    f"must be a mapping with keys {', '.join(rule)}",
                    f"write `{key}:` then indented keys",
                )
            _check_section(value, rule, (*where, key), src, path)
        else:
            _check_value(value, rule, (*where, key), src, path)
    for key, rule in schema.items():
        if isinstance(rule, Key) and rule.required and key not in data:
            line = src.line(*where) if where else 1
            raise ConfigError(
                f"{path}:{line}: {'.'.join((*where, key))}: required key is missing",
                fix=f"add `{key}: {rule.example or _first_choice(rule)}` ({rule.doc})",
            )


def _check_value(value: Any, rule: Key, where: tuple[str, ...], src: Located, path: Path) -> None:
    if rule.deprecated:
        return  # ignored whatever its value; load_spec notes it
    if rule.type is list:
        _check_list(value, rule, where, src, path)
        return
    if not isinstance(value, rule.type) or (rule.type is not bool and isinstance(value, bool)):
        got = type(value).__name__ if value is not None else "nothing"
        # a number as written (`3.10`, not the float 3.1 it reads as); anything else as its repr
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        written = src.text(where, repr(value)) if number else repr(value)
        hint = (
            f'quote it: "{written}"'
            if rule.type is str and isinstance(value, (int, float))
            else rule.doc
        )
        _fail(path, src, where, f"must be a {rule.type.__name__}, got {got} ({written})", hint)
    if rule.choices and value not in rule.choices:
        close = difflib.get_close_matches(str(value), rule.choices, n=1)
        suggestion = f"did you mean {close[0]!r}? " if close else ""
        _fail(
            path,
            src,
            where,
            f"{value!r} is not one of {', '.join(rule.choices)}",
            f"{suggestion}{rule.doc}",
        )
    if rule.pattern and not re.fullmatch(rule.pattern, value):
        _fail(
            path,
            src,
            where,
            f"{value!r} is not valid",
            rule.example and f"write it like {rule.example}" or rule.doc,
        )


def _check_list(value: Any, rule: Key, where: tuple[str, ...], src: Located, path: Path) -> None:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        _fail(
            path,
            src,
            where,
            f"must be a list of names, got {value!r}",
            f"write it like {rule.example}",
        )
    for item in value:
        if rule.pattern and not re.match(rule.pattern, item):
            _fail(
                path,
                src,
                where,
                f"{item!r} is not a valid name",
                "use lowercase letters, digits and dashes",
            )


def _unknown_key(
    key: str, schema: Section, where: tuple[str, ...], src: Located, path: Path
) -> None:
    close = difflib.get_close_matches(key, list(schema), n=1)
    fix = f"did you mean {close[0]!r}?" if close else f"allowed here: {', '.join(schema)}"
    _fail(path, src, (*where, key), "unknown key", fix)


def _fail(path: Path, src: Located, where: tuple[str, ...], message: str, fix: str | None) -> None:
    raise ConfigError(f"{path}:{src.line(*where)}: {'.'.join(where)}: {message}", fix=fix)


def _first_choice(rule: Key) -> str:
    return rule.choices[0] if rule.choices else "..."


def _build(name: str, path: Path, src: Located) -> EnvSpec:
    data = src.data
    platform = PLATFORMS[data["platform"]]
    torch = data.get("torch", {})
    expect = data.get("expect", {})
    image = data.get("image", {})
    index = torch.get("index", "pypi")
    spec = EnvSpec(
        name=name,
        path=path,
        platform=platform,
        python=data["python"],
        accelerator=data["accelerator"],
        torch_index=None if index == "pypi" else index,
        torch_variant=torch.get("variant"),
        macos=data.get("macos", platform.default_macos),
        expect_device=expect.get("device", data["accelerator"]),
        expect_cuda=None,
        image_base=image.get("base"),
        image_digest=image.get("digest"),
        image_toolchain=image.get("toolchain", False),
        opt_in=data.get("opt-in", False),
        project_tests=data.get("verify", {}).get("project-tests", False),
        description=data.get("description", ""),
        machines=tuple(data.get("machines", [])),
        accept_cuda_stack=data.get("accept-cuda-stack", False),
        notes=tuple(deprecation_notes(data, SCHEMA, (), src, path)),
    )
    for check in COMBINATION_RULES:
        problem = check(spec, data)
        if problem:
            key, message, fix = problem
            _fail(path, src, tuple(key.split(".")), message, fix)
    return spec


Problem = tuple[str, str, str] | None


def _accelerator_fits_platform(spec: EnvSpec, data: dict[str, Any]) -> Problem:
    if spec.accelerator in spec.platform.accelerators:
        return None
    allowed = " or ".join(sorted(spec.platform.accelerators))
    return (
        "accelerator",
        f"{spec.accelerator} is impossible on {spec.platform.name}",
        f"use {allowed}",
    )


def _device_fits_accelerator(spec: EnvSpec, data: dict[str, Any]) -> Problem:
    if spec.expect_device in (spec.accelerator, "cpu"):
        return None
    return (
        "expect.device",
        f"{spec.expect_device} cannot run a {spec.accelerator} build",
        f"use {spec.accelerator} or cpu",
    )


def _cuda_stack_only_for_cpu(spec: EnvSpec, data: dict[str, Any]) -> Problem:
    if spec.accept_cuda_stack and spec.accelerator != "cpu":
        return (
            "accept-cuda-stack",
            f"only a cpu env can accept a CUDA build; this is a {spec.accelerator} env",
            "remove accept-cuda-stack",
        )
    return None


def _image_only_on_linux(spec: EnvSpec, data: dict[str, Any]) -> Problem:
    has_image = "image" in data
    if spec.platform.docker_platform is None and has_image:
        return (
            "image",
            f"{spec.platform.name} cannot run in a container",
            "remove the image section",
        )
    if spec.image_digest and not spec.image_base:
        return ("image.digest", "a digest needs a base image", "add image.base")
    return None


def _macos_only_on_mac(spec: EnvSpec, data: dict[str, Any]) -> Problem:
    if "macos" in data and spec.platform.os != "macos":
        return ("macos", f"{spec.platform.name} is not macOS", "remove the macos key")
    return None


def _variant_needs_index(spec: EnvSpec, data: dict[str, Any]) -> Problem:
    if spec.torch_variant and spec.torch_index is None:
        return (
            "torch.variant",
            f"PyPI publishes no +{spec.torch_variant} torch builds",
            "name the index that has them in torch.index (see [tool.archlock.indexes])",
        )
    return None


CUDA_VERSION_RE = r"^[0-9]{1,2}\.[0-9]{1,2}$"
_DROP_EXPECT_CUDA = (
    "remove expect.cuda: the CUDA version comes from the lock (envs/locks/<env>.expect.json)"
)


def _expect_cuda_is_meaningful(spec: EnvSpec, data: dict[str, Any]) -> Problem:
    """`expect.cuda` is deprecated and ignored with a note; a value that is no CUDA version, or
    one in an env whose accelerator has no CUDA, was a mistake when it was written: refuse it."""
    value = data.get("expect", {}).get("cuda")
    if value is None:
        return None
    if spec.accelerator != "cuda":
        message = f"{value!r} means nothing in a {spec.accelerator} env (it has no CUDA)"
        return ("expect.cuda", message, _DROP_EXPECT_CUDA)
    if not isinstance(value, str) or not re.fullmatch(CUDA_VERSION_RE, value):
        return ("expect.cuda", f"{value!r} is not a CUDA version", _DROP_EXPECT_CUDA)
    return None


COMBINATION_RULES = (
    _accelerator_fits_platform,
    _expect_cuda_is_meaningful,
    _device_fits_accelerator,
    _cuda_stack_only_for_cpu,
    _image_only_on_linux,
    _macos_only_on_mac,
    _variant_needs_index,
)


def json_schema() -> dict[str, Any]:
    """The JSON Schema for env specs, from the same table the validator uses."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "archlock.env/1",
        "title": "archlock env spec (envs/<name>.yaml)",
        **_schema_section(SCHEMA),
    }


def _schema_section(section: Section) -> dict[str, Any]:
    properties: dict[str, Any] = {}
    required = []
    for key, rule in section.items():
        if isinstance(rule, dict):
            properties[key] = _schema_section(rule)
            continue
        prop: dict[str, Any] = {
            "type": "boolean" if rule.type is bool else "string",
            "description": rule.doc,
        }
        if rule.type is list:
            prop = {"type": "array", "description": rule.doc, "items": {"type": "string"}}
        if rule.choices:
            prop["enum"] = list(rule.choices)
        if rule.pattern:
            (prop["items"] if rule.type is list else prop)["pattern"] = rule.pattern
        if rule.deprecated:
            prop = {"description": rule.doc, "deprecated": True}
        properties[key] = prop
        if rule.required:
            required.append(key)
    out: dict[str, Any] = {
        "type": "object",
        "additionalProperties": False,
        "properties": properties,
    }
    if required:
        out["required"] = required
    return out
