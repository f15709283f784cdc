"""Machine profiles: what a real machine imposes, recorded by `archlock probe --profile NAME`.

A profile is `envs/machines/<name>.json` (schema `archlock.machine/1`, written by the probe on
that machine, standard library only):

    schema, name, created, os {name, version, distro, kernel}, arch ("x86_64" | "arm64": the
    hardware, Rosetta or QEMU notwithstanding), glibc (or null), macos (or null), rosetta
    (the probe ran translated), vm (true | false | null: unknown), cpu {model, count,
    features: [...]}, nvidia {driver (or null), gpus: [{name, capability}], source, error}

An env names the machines it must serve (`machines:` in its spec); `archlock.lock.fit` checks
the locked build against each. Verify builds the same `Machine` from its probe document
(archlock.core.rules.machine.from_probe).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from archlock.core.jsonsrc import load_json
from archlock.core.rules.machine import Gpu, Machine
from archlock.core.spec import EnvSpec
from archlock.errors import ConfigError

SCHEMA = "archlock.machine/1"


def profiles_dir(envs_dir: Path) -> Path:
    return envs_dir / "machines"


def from_profile(doc: dict[str, Any], source: str) -> Machine:
    """A Machine from a profile document; ValueError names what is wrong with it."""
    if doc.get("schema") != SCHEMA:
        raise ValueError(f"schema is {doc.get('schema')!r}, not {SCHEMA!r}")
    osf, nvidia = doc.get("os") or {}, doc.get("nvidia") or {}
    if osf.get("name") not in ("linux", "macos"):
        raise ValueError(f"os.name is {osf.get('name')!r}, not linux or macos")
    gpus = tuple(
        Gpu(str(g.get("name") or "GPU"), g.get("capability")) for g in nvidia.get("gpus") or []
    )
    return Machine(
        name=str(doc.get("name") or Path(source).stem),
        source=source,
        os=osf["name"],
        arch=doc.get("arch"),
        glibc=doc.get("glibc"),
        macos=doc.get("macos"),
        vm=doc.get("vm"),
        driver=nvidia.get("driver"),
        gpus=gpus,
    )


def load(envs_dir: Path, name: str, env: EnvSpec) -> Machine:
    """The profile `name` an env's `machines:` list names; a missing or bad one is a ConfigError."""
    path = profiles_dir(envs_dir) / f"{name}.json"
    record = f"run `archlock probe --profile {name}` on that machine and commit {path.name}"
    if not path.is_file():
        raise ConfigError(
            f"{env.path}: machines: no profile {name!r} ({path} is missing)",
            fix=f"{record} into {path.parent}, or remove {name} from machines",
        )
    doc = load_json(path, what="machine profile", fix=record)
    try:
        return from_profile(doc, str(path))
    except (ValueError, TypeError, AttributeError, KeyError) as exc:
        raise ConfigError(f"{path}: not a machine profile: {exc}", fix=record) from None


def load_all(envs_dir: Path, env: EnvSpec) -> list[Machine]:
    return [load(envs_dir, name, env) for name in env.machines]
