"""Reading a teammate's report: `archlock.report/1`, a bare `archlock.probe/1` document (upgraded to
a report without a lock or a command), or an `archlock.verify/1` result (its probe, and the image
it was taken in, if any). Only the shape repro relies on is checked;
a malformed or unknown report is one ConfigError naming the file and the key.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from archlock.core.jsonsrc import load_json
from archlock.errors import ConfigError
from archlock.inenv import locate
from archlock.inenv import report as report_script

PROBE_SCHEMA = "archlock.probe/1"
VERIFY_SCHEMA = "archlock.verify/1"  # archlock.verify.resultfile's documents
REMAKE = (
    "make the report again with `archlock report` "
    "(or the script from `archlock report --write-script`)"
)
NoneType = type(None)

# (dotted key, accepted types): the shape repro relies on; anything else in a report is ignored
SHAPE: tuple[tuple[str, tuple[type, ...]], ...] = (
    ("created", (str,)),
    ("platform", (str, NoneType)),
    ("lock", (dict,)),
    ("lock.env", (str, NoneType)),
    ("lock.sha256", (str, NoneType)),
    ("command", (dict, NoneType)),
    ("probe", (dict,)),
    ("probe.schema", (str,)),
    ("probe.os", (dict,)),
    ("probe.os.name", (str,)),
    ("probe.python", (dict,)),
    ("probe.python.version", (str,)),
    ("probe.python.arch", (str, NoneType)),
    ("probe.emulation", (dict, NoneType)),
    ("probe.distributions", (list,)),
    ("probe.binaries", (dict, NoneType)),
    ("probe.torch", (dict, NoneType)),
    ("probe.gpu", (dict, NoneType)),
    ("probe.env", (dict,)),
    ("probe.os.version", (str, NoneType)),
    ("probe.python.binary_archs", (list, NoneType)),
    ("probe.emulation.emulated", (bool, NoneType)),
    ("probe.emulation.by", (str, NoneType)),
    ("probe.emulation.host_arch", (str, NoneType)),
    ("probe.torch.importable", (bool, NoneType)),
    ("probe.torch.version", (str, NoneType)),
    ("probe.torch.cuda", (str, NoneType)),
    ("probe.torch.hip", (str, NoneType)),
    ("probe.torch.mps_built", (bool, NoneType)),
    ("probe.torch.error", (str, NoneType)),
    ("probe.torch.devices", (list, NoneType)),
    ("probe.torch.arch_list", (list, NoneType)),
    ("probe.binaries.foreign_total", (int, NoneType)),
    ("probe.binaries.expected_arch", (str, NoneType)),
    ("probe.binaries.foreign", (list, NoneType)),
    ("probe.gpu.nvidia_driver", (str, NoneType)),
    ("image", (dict, NoneType)),
    ("image.id", (str, NoneType)),
)
# lists inside the probe facts: (dotted key, item types, {item key: types})
LIST_SHAPE: tuple[tuple[str, tuple[type, ...], dict[str, tuple[type, ...]]], ...] = (
    ("probe.python.binary_archs", (str,), {}),
    ("probe.torch.arch_list", (str,), {}),
    ("probe.torch.devices", (dict,), {"supported": (bool, NoneType)}),
    ("probe.binaries.foreign", (dict,), {"path": (str,)}),
    ("command.output_tail", (str,), {}),
)
COMMAND_SHAPE = (("argv", (list,)), ("exit_code", (int,)), ("output_tail", (list,)))


def load_report(path: Path) -> dict[str, Any]:
    """The report as a dict of the documented shape, or one ConfigError naming file and key."""
    if not os.path.lexists(path):
        raise ConfigError(f"{path}: no such report file", fix=REMAKE)
    data = load_json(path, what="report", fix=REMAKE)
    if not isinstance(data, dict):
        raise ConfigError(
            f"{path}: (top level): expected a JSON object, found {type(data).__name__}", fix=REMAKE
        )
    data = upgrade(path, data)
    check_shape(path, data)
    return data


def upgrade(path: Path, data: dict[str, Any]) -> dict[str, Any]:
    schema = data.get("schema")
    if schema == report_script.SCHEMA:
        return data
    if schema == PROBE_SCHEMA:  # a bare probe: a report without a lock or a command
        return {
            "schema": report_script.SCHEMA,
            "created": "",
            "platform": locate.intended_platform(data),
            "project": None,
            "lock": {"env": None, "sha256": None},
            "command": None,
            "probe": data,
        }
    if schema == VERIFY_SCHEMA and isinstance(data.get("probe"), dict):
        return from_verify(data)
    if isinstance(schema, str) and schema.startswith("archlock.report/"):
        raise ConfigError(
            f"{path}: schema: {schema!r} is newer than this archlock reads "
            f"({report_script.SCHEMA})",
            fix="upgrade archlock, or make the report with this version",
        )
    raise ConfigError(
        f"{path}: schema: {schema!r} is not an archlock report ({report_script.SCHEMA})", fix=REMAKE
    )


def from_verify(data: dict[str, Any]) -> dict[str, Any]:
    """A verify result as a report: its probe, its env, no command; the image it ran in."""
    upgraded: dict[str, Any] = {
        "schema": report_script.SCHEMA,
        "created": data.get("created", ""),
        "platform": data.get("platform"),
        "project": None,
        "lock": {"env": data.get("env"), "sha256": None},
        "command": None,
        "probe": data["probe"],
    }
    if data.get("mode") == "image":
        upgraded["image"] = data.get("image")
    return upgraded


def lookup(data: dict[str, Any], dotted: str) -> tuple[bool, Any]:
    value: Any = data
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            return False, None
        value = value[part]
    return True, value


def type_names(types: tuple[type, ...]) -> str:
    names = {
        str: "a string",
        int: "an integer",
        bool: "true or false",
        dict: "an object",
        list: "a list",
        NoneType: "null",
    }
    return " or ".join(names.get(t, t.__name__) for t in types)


def expect(path: Path, key: str, value: Any, types: tuple[type, ...], present: bool = True) -> None:
    if not present:
        raise ConfigError(f"{path}: {key}: missing", fix=REMAKE)
    if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
        found = "null" if value is None else type(value).__name__
        raise ConfigError(f"{path}: {key}: expected {type_names(types)}, found {found}", fix=REMAKE)


def check_shape(path: Path, data: dict[str, Any]) -> None:
    for key, types in SHAPE:
        present, value = lookup(data, key)
        expect(path, key, value, types, present or NoneType in types)
    for key, types in SHAPE:  # a nullable key left out reads as null from here on
        parent, _, name = key.rpartition(".")
        holder = lookup(data, parent)[1] if parent else data
        if NoneType in types and isinstance(holder, dict):
            holder.setdefault(name, None)
    if data["probe"]["schema"] != PROBE_SCHEMA:
        raise ConfigError(
            f"{path}: probe.schema: {data['probe']['schema']!r} is not {PROBE_SCHEMA}", fix=REMAKE
        )
    for index, dist in enumerate(data["probe"]["distributions"]):
        for field in ("name", "version"):
            present, value = lookup(dist, field) if isinstance(dist, dict) else (False, None)
            expect(path, f"probe.distributions[{index}].{field}", value, (str,), present)
    for key, item_types, fields in LIST_SHAPE:
        items = lookup(data, key)[1]  # not a list (command.output_tail): COMMAND_SHAPE says so
        for index, item in enumerate(items if isinstance(items, list) else []):
            expect(path, f"{key}[{index}]", item, item_types)
            for field, types in fields.items():
                present, value = lookup(item, field)
                expect(path, f"{key}[{index}].{field}", value, types, present or NoneType in types)
    for name, value in data["probe"]["env"].items():
        expect(path, f"probe.env.{name}", value, (str,))
    if data["command"] is not None:
        for field, types in COMMAND_SHAPE:
            present, value = lookup(data["command"], field)
            expect(path, f"command.{field}", value, types, present)
        for index, word in enumerate(data["command"]["argv"]):
            expect(path, f"command.argv[{index}]", word, (str,))


def report_sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
